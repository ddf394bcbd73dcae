import { createRoot } from 'react-dom/client';
import App from './App.jsx';
import './style.css';

createRoot(document.getElementById('root')).render(<App />);

// Development builds (esbuild --serve --watch) reload the page when a rebuild
// finishes: esbuild announces it on its /esbuild event stream (SSE), which
// reaches the page through the gateway. LIVE_RELOAD is false in production
// builds, so this block is dropped by the minifier.
if (LIVE_RELOAD) {
  new EventSource('/esbuild').addEventListener('change', () => window.location.reload());
}

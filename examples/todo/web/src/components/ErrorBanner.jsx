// ErrorBanner says the API is resting (not answering, or answering 5xx) and
// that the page keeps retrying; it disappears when a call succeeds again.
export default function ErrorBanner({ error, onRetry }) {
  if (!error) return null;
  const resting = error.status === 0 || error.status >= 500;
  return (
    <div id="banner" role="alert" className={resting ? 'resting' : 'failed'}>
      <strong>{resting ? 'The API is resting.' : 'That did not work.'}</strong>{' '}
      <span id="banner-detail">{error.message}</span>
      {resting && <span> Retrying every few seconds.</span>}{' '}
      <button type="button" onClick={onRetry}>Retry now</button>
    </div>
  );
}

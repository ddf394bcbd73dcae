import { useCallback, useEffect, useState } from 'react';
import * as api from './api.js';
import AddTodo from './components/AddTodo.jsx';
import ErrorBanner from './components/ErrorBanner.jsx';
import Header from './components/Header.jsx';
import RequestId from './components/RequestId.jsx';
import TodoList from './components/TodoList.jsx';

// How often the list is fetched again: often while the API is resting, so the
// page recovers by itself; now and then otherwise, to show other tabs' edits.
const RETRY_MS = 2000;
const REFRESH_MS = 10000;

export default function App() {
  const [todos, setTodos] = useState([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState(null);
  const [requestId, setRequestId] = useState('');

  // call runs one API call, records its request id and the error (or clears
  // it), and resolves to the call's data, or undefined when it failed.
  const call = useCallback(async (fn) => {
    try {
      const { data, requestId: id } = await fn();
      setRequestId(id);
      setError(null);
      return data ?? true;
    } catch (err) {
      setRequestId(err.requestId || '');
      setError(err);
      return undefined;
    }
  }, []);

  const load = useCallback(async () => {
    const data = await call(api.listTodos);
    if (data !== undefined) {
      setTodos(data);
      setLoaded(true);
    }
  }, [call]);

  useEffect(() => {
    load();
  }, [load]);

  const resting = error !== null && (error.status === 0 || error.status >= 500);
  useEffect(() => {
    const timer = setInterval(load, resting ? RETRY_MS : REFRESH_MS);
    return () => clearInterval(timer);
  }, [load, resting]);

  const add = async (title) => {
    const created = await call(() => api.addTodo(title));
    if (created === undefined) return false;
    setTodos((ts) => [...ts, created]);
    return true;
  };
  const toggle = async (todo) => {
    const updated = await call(() => api.setDone(todo.id, !todo.done));
    if (updated !== undefined) setTodos((ts) => ts.map((t) => (t.id === updated.id ? updated : t)));
  };
  const remove = async (todo) => {
    if ((await call(() => api.deleteTodo(todo.id))) !== undefined) {
      setTodos((ts) => ts.filter((t) => t.id !== todo.id));
    }
  };

  return (
    <main>
      <Header />
      <ErrorBanner error={error} onRetry={load} />
      <AddTodo onAdd={add} />
      {loaded ? <TodoList todos={todos} onToggle={toggle} onDelete={remove} /> : <p id="loading">Loading…</p>}
      <RequestId id={requestId} />
    </main>
  );
}

// The API client. Every call goes to /api/... on the page's own origin, so the
// browser only ever talks to drawbridge; the gateway stamps each answer with
// X-Request-Id, which the page shows so a person can quote it in a bug report.

// ApiError is a failed call: status 0 means no answer at all (network error).
export class ApiError extends Error {
  constructor(status, requestId, message) {
    super(message);
    this.status = status;
    this.requestId = requestId;
  }
}

// request sends one JSON call and resolves to {data, requestId}, or rejects
// with an ApiError that carries the status and the request id.
export async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api' + path, init);
  } catch (err) {
    throw new ApiError(0, '', `no answer (${err.message})`);
  }
  const requestId = res.headers.get('X-Request-Id') || '';
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const reason = (data && data.error) || res.statusText || 'error';
    throw new ApiError(res.status, requestId, `${res.status} ${reason}`);
  }
  return { data, requestId };
}

export const listTodos = () => request('GET', '/todos');
export const addTodo = (title) => request('POST', '/todos', { title });
export const setDone = (id, done) => request('PATCH', `/todos/${id}`, { done });
export const deleteTodo = (id) => request('DELETE', `/todos/${id}`);

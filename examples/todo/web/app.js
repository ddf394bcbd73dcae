// The todo front end. It calls the API through the gateway under /api/, so
// the browser only ever talks to drawbridge. A React build's output can
// replace these three files: it only needs the same /api/ paths.
const api = (path, opts = {}) =>
  fetch('/api' + path, { headers: { 'Content-Type': 'application/json' }, ...opts });

async function load() {
  const res = await api('/todos');
  const status = document.getElementById('status');
  if (!res.ok) {
    status.textContent = `The API answered ${res.status}; request ${res.headers.get('X-Request-Id') || ''}`;
    return;
  }
  const todos = await res.json();
  const ul = document.getElementById('todos');
  ul.replaceChildren(...todos.map(render));
  status.textContent = `${todos.length} todo(s)`;
}

function render(t) {
  const li = document.createElement('li');
  li.dataset.id = t.id;
  li.className = t.done ? 'done' : '';
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.checked = t.done;
  box.onchange = async () => { await api(`/todos/${t.id}`, { method: 'PATCH', body: JSON.stringify({ done: box.checked }) }); load(); };
  const span = document.createElement('span');
  span.textContent = t.title;
  const del = document.createElement('button');
  del.textContent = 'Delete';
  del.onclick = async () => { await api(`/todos/${t.id}`, { method: 'DELETE' }); load(); };
  li.append(box, span, del);
  return li;
}

document.getElementById('add').onsubmit = async (e) => {
  e.preventDefault();
  const input = document.getElementById('title');
  await api('/todos', { method: 'POST', body: JSON.stringify({ title: input.value }) });
  input.value = '';
  load();
};

load();

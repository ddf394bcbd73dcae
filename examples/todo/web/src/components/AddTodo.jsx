import { useState } from 'react';

// AddTodo is the form for a new todo; onAdd resolves when the API has it.
export default function AddTodo({ onAdd }) {
  const [title, setTitle] = useState('');
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    const t = title.trim();
    if (!t) return;
    setBusy(true);
    try {
      if (await onAdd(t)) setTitle('');
    } finally {
      setBusy(false);
    }
  }
  return (
    <form id="add" onSubmit={submit}>
      <input
        id="new-title"
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        placeholder="What needs doing?"
        maxLength={200}
        autoComplete="off"
        required
      />
      <button type="submit" disabled={busy}>Add</button>
    </form>
  );
}

// TodoItem is one row: a checkbox that toggles done and a delete button.
export default function TodoItem({ todo, onToggle, onDelete }) {
  return (
    <li data-id={todo.id} className={todo.done ? 'done' : ''}>
      <input
        type="checkbox"
        className="toggle"
        checked={todo.done}
        onChange={() => onToggle(todo)}
        aria-label={`Mark "${todo.title}" ${todo.done ? 'not done' : 'done'}`}
      />
      <span className="title">{todo.title}</span>
      <button type="button" className="delete" onClick={() => onDelete(todo)}>Delete</button>
    </li>
  );
}

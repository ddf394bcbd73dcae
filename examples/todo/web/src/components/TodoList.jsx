import TodoItem from './TodoItem.jsx';

// TodoList renders the todos, or a line saying there are none.
export default function TodoList({ todos, onToggle, onDelete }) {
  if (todos.length === 0) return <p id="empty">Nothing to do.</p>;
  return (
    <ul id="todos">
      {todos.map((t) => (
        <TodoItem key={t.id} todo={t} onToggle={onToggle} onDelete={onDelete} />
      ))}
    </ul>
  );
}

// The page heading. The hot reload test edits this text in a copy of the
// sources and waits for the open page to show the new one.
export default function Header() {
  return (
    <header>
      <h1 id="title">Todo</h1>
    </header>
  );
}

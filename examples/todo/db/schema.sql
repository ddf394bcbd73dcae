CREATE TABLE IF NOT EXISTS todos (
  id    serial PRIMARY KEY,
  title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  done  boolean NOT NULL DEFAULT false
);
GRANT SELECT, INSERT, UPDATE, DELETE ON todos TO todo;
GRANT USAGE, SELECT ON SEQUENCE todos_id_seq TO todo;

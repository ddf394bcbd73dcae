"""pytest fixtures for the todo API: a real PostgreSQL, started for the test session.

The tests run in the Dockerfile's test stage (docker build --target test), which has Debian's PostgreSQL 15 and
python3-pytest; nothing of this reaches the production image. The cluster lives in a temporary directory, listens on
a Unix socket only, trusts its local users, and gets the todos table of ../db/schema.sql (copied here as SCHEMA, since
the api's build context holds only this directory).
"""
import os
import shutil
import subprocess
import tempfile

import pytest

PG_BIN = os.environ.get("TODO_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
SCHEMA = """
CREATE TABLE todos (
  id    serial PRIMARY KEY,
  title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  done  boolean NOT NULL DEFAULT false
);
"""


def _pg(tool, *args):
    subprocess.run([os.path.join(PG_BIN, tool), *args], check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def database():
    """A running PostgreSQL with a todo database; yields the socket directory."""
    root = tempfile.mkdtemp(prefix="todo-api-test-")
    data, sock = os.path.join(root, "data"), os.path.join(root, "sock")
    os.mkdir(sock)
    _pg("initdb", "--username=todo", "--auth=trust", "--encoding=UTF8", "--no-instructions", data)
    _pg("pg_ctl", "-D", data, "-w", "-l", os.path.join(root, "log"), "-o",
        f"-c listen_addresses='' -c unix_socket_directories={sock} -c fsync=off", "start")
    try:
        _pg("createdb", "-h", sock, "-U", "todo", "todo")
        _pg("psql", "-h", sock, "-U", "todo", "-d", "todo", "-v", "ON_ERROR_STOP=1", "-q", "-c", SCHEMA)
        password = os.path.join(root, "password")
        with open(password, "w", encoding="utf-8") as f:
            f.write("unused-with-trust\n")
        os.environ.update(TODO_DB_HOST=sock, TODO_DB_SSLMODE="disable", TODO_DB_PASSWORD_FILE=password)
        yield sock
    finally:
        _pg("pg_ctl", "-D", data, "-w", "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def client(database):
    """A Flask test client of the app, on an empty todos table."""
    import app as todo  # imported here: it reads its settings from the environment the database fixture sets

    todo.query("TRUNCATE todos RESTART IDENTITY", fetch=False)
    return todo.app.test_client()

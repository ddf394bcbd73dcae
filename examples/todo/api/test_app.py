"""Tests of the todo API against a real PostgreSQL (conftest.py starts one)."""


def test_health(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ok"}


def test_create_list_toggle_delete(client):
    r = client.post("/todos", json={"title": "  buy milk  "})
    assert r.status_code == 201
    todo = r.get_json()
    assert todo == {"id": 1, "title": "buy milk", "done": False}

    assert client.get("/todos").get_json() == [todo]

    r = client.patch(f"/todos/{todo['id']}", json={"done": True})
    assert r.status_code == 200
    assert r.get_json()["done"] is True
    r = client.patch(f"/todos/{todo['id']}", json={"done": False})
    assert r.get_json()["done"] is False

    assert client.delete(f"/todos/{todo['id']}").status_code == 204
    assert client.get("/todos").get_json() == []


def test_list_is_ordered_by_id(client):
    for title in ("one", "two", "three"):
        client.post("/todos", json={"title": title})
    assert [t["title"] for t in client.get("/todos").get_json()] == ["one", "two", "three"]


def test_bad_titles_are_refused(client):
    for body in ({}, {"title": ""}, {"title": "   "}, {"title": "x" * 201}):
        r = client.post("/todos", json=body)
        assert r.status_code == 400, body
        assert "title" in r.get_json()["error"]
    r = client.post("/todos", data="not json", content_type="application/json")
    assert r.status_code == 400
    assert client.get("/todos").get_json() == []


def test_unknown_todos_are_404(client):
    assert client.patch("/todos/999", json={"done": True}).status_code == 404
    assert client.delete("/todos/999").status_code == 404
    assert client.get("/todos/abc").status_code == 404


def _idle_pooled(todo):
    """The connections sitting idle in the api's pool, after one request filled it."""
    return list(todo.pool()._pool)  # noqa: SLF001 - the test looks inside psycopg2's pool on purpose


def _end_sessions(database, conns):
    """End the server side of conns as a draining drawbridge (or a PostgreSQL shutdown) does: FATAL 57P01, then
    the connection closes while the client is idle. Waits until each client socket shows it."""
    import select
    import time

    import psycopg2

    admin = psycopg2.connect(host=database, dbname="todo", user="todo")
    admin.autocommit = True
    with admin.cursor() as cur:
        for c in conns:
            cur.execute("SELECT pg_terminate_backend(%s)", (c.get_backend_pid(),))
    admin.close()
    deadline = time.monotonic() + 10
    for c in conns:
        while not select.select([c.fileno()], [], [], 0.1)[0]:
            assert time.monotonic() < deadline, "the ended session's socket never became readable"


def test_checkout_discards_a_connection_the_server_ended(client, database):
    import app as todo

    client.post("/todos", json={"title": "kept"})
    assert client.get("/todos").status_code == 200
    idle = _idle_pooled(todo)
    assert idle, "no idle connection in the pool"
    old = {c.get_backend_pid() for c in idle}
    _end_sessions(database, idle)
    for c in idle:
        assert not todo.usable(c), "a connection the server ended passed the checkout check"

    # Reads and writes both succeed: the dead connections are discarded before any statement is sent on them.
    r = client.post("/todos", json={"title": "after the drain"})
    assert r.status_code == 201
    assert [t["title"] for t in client.get("/todos").get_json()] == ["kept", "after the drain"]
    assert not old & {c.get_backend_pid() for c in _idle_pooled(todo)}, "an ended connection is still pooled"


def test_checkout_keeps_a_live_connection(client):
    import app as todo

    client.get("/todos")
    idle = _idle_pooled(todo)
    assert idle and all(todo.usable(c) for c in idle)
    pids = {c.get_backend_pid() for c in idle}
    client.get("/todos")
    assert pids & {c.get_backend_pid() for c in _idle_pooled(todo)}, "a live connection was replaced"


def test_a_read_is_retried_once_when_the_connection_fails_under_it(client, database, monkeypatch):
    import app as todo

    client.post("/todos", json={"title": "one"})
    idle = _idle_pooled(todo)
    _end_sessions(database, idle)
    # The session ends between the checkout check and the statement: the check passes, the statement fails.
    monkeypatch.setattr(todo, "usable", lambda conn: not conn.closed)
    r = client.get("/todos")
    assert r.status_code == 200
    assert [t["title"] for t in r.get_json()] == ["one"]

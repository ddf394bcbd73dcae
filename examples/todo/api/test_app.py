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

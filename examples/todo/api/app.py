"""The todo API: a plain Flask app that knows nothing about mTLS.

It talks to PostgreSQL through the drawbridge sidecar in its network namespace
(localhost:5432, TLS); the sidecar carries the connection to the database
over mutual TLS. The database password is read from a Docker secret file, never
from the environment.
"""
import os
import select
import threading

import psycopg2
import psycopg2.extensions
import psycopg2.pool
from flask import Flask, jsonify, request

app = Flask(__name__)

DB_HOST = os.environ.get("TODO_DB_HOST", "localhost")
DB_PORT = int(os.environ.get("TODO_DB_PORT", "5432"))
DB_NAME = os.environ.get("TODO_DB_NAME", "todo")
DB_USER = os.environ.get("TODO_DB_USER", "todo")
PASSWORD_FILE = os.environ.get("TODO_DB_PASSWORD_FILE", "/run/secrets/db_password")
# TLS to the sidecar too: the database offers SCRAM-SHA-256-PLUS (its own leg
# is TLS), which libpq refuses on a plaintext connection. verify-full checks
# the sidecar's certificate (DNS name localhost) against drawbridge's trust
# bundle. Channel binding cannot cross a hop that terminates TLS: mutual TLS
# on every leg is what stops a man in the middle here.
DB_SSLMODE = os.environ.get("TODO_DB_SSLMODE", "verify-full")
DB_SSLROOTCERT = os.environ.get("TODO_DB_SSLROOTCERT", "/trust/ca.crt")

POOL_MIN, POOL_MAX = 1, 8
_pool = None
_pool_lock = threading.Lock()
_pool_password = None


def _password():
    with open(PASSWORD_FILE, encoding="utf-8") as f:
        return f.read().rstrip("\n")


def pool():
    """A connection pool, rebuilt when the password secret changes."""
    global _pool, _pool_password
    password = _password()
    with _pool_lock:
        if _pool is None or password != _pool_password:
            if _pool is not None:
                _pool.closeall()
            _pool = psycopg2.pool.ThreadedConnectionPool(
                POOL_MIN, POOL_MAX, host=DB_HOST, port=DB_PORT, dbname=DB_NAME, user=DB_USER,
                password=password, connect_timeout=5, application_name="todo-api",
                sslmode=DB_SSLMODE, sslrootcert=DB_SSLROOTCERT, channel_binding="disable")
            _pool_password = password
        return _pool


def usable(conn):
    """Whether a pooled connection can be handed out: open, idle, and with nothing to read.

    An idle PostgreSQL connection has nothing to read. If its socket is readable, the server side ended it
    while it sat in the pool: a draining drawbridge ends a session between transactions with FATAL 57P01 and
    closes it (a PostgreSQL shutdown does the same), or the connection was cut. Such a connection would fail
    the next statement, so it is discarded before any statement is sent on it. This costs no round trip.
    """
    if conn.closed:
        return False
    if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def checkout(p):
    """A connection from the pool that passed usable(); dead ones are closed and replaced."""
    for _ in range(POOL_MAX + 1):
        conn = p.getconn()
        if usable(conn):
            return conn
        p.putconn(conn, close=True)
    return p.getconn()


# A connection-level failure: the connection is unusable. (InterfaceError is what a connection that broke under a
# statement raises next, from the rollback on the way out of the transaction.)
CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


def query(sql, args=(), fetch=True):
    try:
        return _query(sql, args, fetch)
    except CONNECTION_ERRORS:
        # The connection failed under the statement (checkout() caught the ones that were already dead): its
        # session ended between the check and the statement. A read is safe to try once more, on another
        # connection. A write is not: it may have committed before the connection failed.
        if not sql.lstrip().upper().startswith("SELECT"):
            raise
        return _query(sql, args, fetch)


def _query(sql, args, fetch):
    p = pool()
    conn = checkout(p)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if fetch else cur.rowcount
    except CONNECTION_ERRORS:
        p.putconn(conn, close=True)
        conn = None
        raise
    finally:
        if conn is not None:
            p.putconn(conn)


def row(r):
    return {"id": r[0], "title": r[1], "done": r[2]}


@app.get("/todos")
def list_todos():
    return jsonify([row(r) for r in query("SELECT id, title, done FROM todos ORDER BY id")])


@app.post("/todos")
def create_todo():
    body = request.get_json(silent=True) or {}
    title = str(body.get("title", "")).strip()
    if not title or len(title) > 200:
        return jsonify(error='send {"title": "..."} (1 to 200 characters)'), 400
    r = query("INSERT INTO todos (title) VALUES (%s) RETURNING id, title, done", (title,))[0]
    return jsonify(row(r)), 201


@app.patch("/todos/<int:todo_id>")
def update_todo(todo_id):
    body = request.get_json(silent=True) or {}
    rows = query("UPDATE todos SET done = %s WHERE id = %s RETURNING id, title, done",
                 (bool(body.get("done", True)), todo_id))
    if not rows:
        return jsonify(error="no such todo"), 404
    return jsonify(row(rows[0]))


@app.delete("/todos/<int:todo_id>")
def delete_todo(todo_id):
    if query("DELETE FROM todos WHERE id = %s", (todo_id,), fetch=False) == 0:
        return jsonify(error="no such todo"), 404
    return "", 204


@app.get("/healthz")
def healthz():
    """Liveness: the process serves. Readiness of the database is /readyz."""
    return jsonify(status="ok")


@app.get("/readyz")
def readyz():
    try:
        query("SELECT 1")
    except Exception as e:  # noqa: BLE001 - report any failure as not ready
        return jsonify(status="fail", reason=type(e).__name__), 503
    return jsonify(status="ok")

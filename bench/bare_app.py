"""The ceiling for bench/stamp_throughput.py: a bare WSGI app whose only route does one INSERT (one transaction,
committed) into the benchmark's own database, served by the same gunicorn configuration as the portal.

DATABASE_URL: the same URL the portal uses (postgresql+psycopg://… or sqlite:///…).
"""
import json
import os
import sqlite3

_conn = None
URL = os.environ.get("DATABASE_URL", "")


def _connect():
    global _conn
    if _conn is None:
        if URL.startswith("sqlite"):
            path = URL.split("///", 1)[1]
            _conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            _conn.execute("PRAGMA journal_mode=WAL")
            _conn.execute("PRAGMA synchronous=NORMAL")
            _conn.execute("PRAGMA busy_timeout=30000")
        else:
            import psycopg

            _conn = psycopg.connect(URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=False)
    return _conn


def create_table(url: str) -> None:
    """Called once by the benchmark before gunicorn starts (workers racing on CREATE TABLE would fail)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1])
        conn.execute("CREATE TABLE IF NOT EXISTS bench_bare (id INTEGER PRIMARY KEY, card TEXT NOT NULL, "
                     "created_at TEXT NOT NULL)")
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_bare (id bigserial PRIMARY KEY, card text NOT NULL, "
                         "created_at timestamptz NOT NULL)")


def app(environ, start_response):
    conn = _connect()
    card = environ.get("PATH_INFO", "/").rstrip("/").split("/")[-2] if environ.get("PATH_INFO", "").count("/") > 2 \
        else "0"
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute("INSERT INTO bench_bare (card, created_at) VALUES (?, datetime('now'))", (card,))
        new_id = cur.lastrowid
        conn.execute("COMMIT")
    else:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO bench_bare (card, created_at) VALUES (%s, now()) RETURNING id", (card,))
            new_id = cur.fetchone()[0]
        conn.commit()
    body = json.dumps({"id": new_id, "card": card}).encode()
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]

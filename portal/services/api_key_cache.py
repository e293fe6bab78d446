"""Resolved API keys kept per process, so an API request does not spend a database round trip on authentication.

A cache of who a key is may only be used while every process hears at once that it changed. On PostgreSQL:

* each process runs one listener thread with its own connection, ``LISTEN portal_api_keys``;
* triggers on ``api_keys`` (any UPDATE or DELETE) and on ``vendors`` (a change of ``active``, a DELETE) call
  ``pg_notify('portal_api_keys')`` (migration ``perf02``), so every path — the admin pages, the API, the CLI, a
  hand-written SQL statement — announces the change; PostgreSQL delivers it when the change commits;
* on a notification the listener empties the cache. The process that made the change also empties its own cache
  right after its commit (``mark_changed``), without waiting for the notification to come back;
* while the listener is not connected (before it has started, after the database restarted) the cache is not
  used at all: every request asks the database, as without a cache;
* an entry filled from a read that began before an invalidation is not kept (a generation counter), and entries
  expire after ``API_KEY_CACHE_SECONDS`` (default 60) whatever happens.

SQLite has no NOTIFY; there each process keeps the keys it resolved with the configuration's version read in the
same statement (``config_version``, raised by triggers on ``api_keys``, ``vendors`` and ``loyalty_programs``:
migrations ``perf04`` and ``perf06``). A request authenticated from that copy confirms it in its own transaction,
in every attempt of it, after the view and before anything is committed or answered
(:func:`portal.services.accounts.confirm_api_key`, ``PortalFlask._dispatch_unit``): by the version read with the
card a balance change locked, or one read of it. The same number means no key, vendor or program changed in
between, so the key is exactly what a look-up would have returned; another number means the key is looked up
again there, and a refused key answers instead of the view. What the request saves is a transaction of its own
for the look-up before the view's (a ``BEGIN``/``COMMIT`` pair and the session's work around them).
``API_KEY_CACHE_SECONDS = 0`` turns either cache off.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db

log = logging.getLogger(__name__)

CHANNEL = "portal_api_keys"
MAX_ENTRIES = 10_000
HEARTBEAT_SECONDS = 5.0


class ApiKeyCache:
    def __init__(self, dsn: str, ttl: float):
        self.dsn = dsn
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Any]] = {}
        self._generation = 0
        self._pid: int | None = None
        self._listening = threading.Event()
        self._stop = threading.Event()

    # -- the request side -------------------------------------------------------------------------------------

    def get(self, digest: str) -> tuple[int, Any]:
        """(generation, cached value or None). Take the generation before reading the database; hand it to put."""
        self._ensure_listener()
        generation = self._generation
        if not self._listening.is_set():
            return generation, None
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return generation, None
        return generation, entry[1]

    def put(self, digest: str, value: Any, generation: int) -> None:
        with self._lock:
            if generation != self._generation or not self._listening.is_set():
                return  # invalidated while we were reading, or nobody would tell us about the next change
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + self.ttl, value)

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries = {}

    # -- the listener -----------------------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def wait_listening(self, timeout: float) -> bool:
        self._ensure_listener()
        return self._listening.wait(timeout)

    def stop(self) -> None:
        self._stop.set()

    def _ensure_listener(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            # A new process (gunicorn forks workers from a master that loaded the app): threads do not survive a
            # fork, so nothing inherited can be trusted.
            self._pid = pid
            self._entries = {}
            self._generation += 1
            self._listening = threading.Event()
            thread = threading.Thread(target=self._listen, name="api-key-cache", daemon=True)
            thread.start()

    def _listen(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5,
                                     application_name="portal-api-key-cache") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.invalidate()  # whatever changed while nobody was listening
                    self._listening.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=HEARTBEAT_SECONDS):
                            self.invalidate()
                        conn.execute("SELECT 1")  # a heartbeat: a connection that died quietly raises here
            except Exception as exc:  # noqa: BLE001 - any failure means: stop trusting the cache, reconnect
                if not self._stop.is_set():
                    log.warning("API key cache listener lost its connection (%s); cache off until it is back",
                                type(exc).__name__)
            finally:
                self._listening.clear()
                self.invalidate()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)


class VersionedKeyCache:
    """SQLite's cache: digest -> the resolved key, which carries the configuration's version it was read with.
    Nothing here is trusted by itself: the caller confirms the version inside the request's transaction."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, digest: str) -> tuple[int, Any]:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return 0, None
        return 0, entry[1]

    def put(self, digest: str, value: Any, generation: int = 0) -> None:
        """Keep a resolved key (``accounts.ResolvedApiKey``); it comes back from ``get`` marked ``unconfirmed``."""
        if value.version is None:
            return  # no version row (a database restored without it): nothing could confirm the entry
        if len(self._entries) >= MAX_ENTRIES:
            self._entries = {}
        self._entries[digest] = (time.monotonic() + self.ttl, dataclasses.replace(value, unconfirmed=True))

    def invalidate(self) -> None:
        self._entries = {}


def init_app(app) -> None:
    ttl = float(app.config.get("API_KEY_CACHE_SECONDS") or 0)
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if ttl <= 0:
        return
    if uri.startswith("sqlite"):
        app.extensions["api_key_cache"] = VersionedKeyCache(ttl)
        return
    if not uri.startswith("postgresql"):
        return
    from sqlalchemy.engine import make_url

    url = make_url(uri).set(drivername="postgresql")
    app.extensions["api_key_cache"] = ApiKeyCache(url.render_as_string(hide_password=False), ttl)


def current() -> ApiKeyCache | VersionedKeyCache | None:
    return current_app.extensions.get("api_key_cache")


def mark_changed() -> None:
    """Call in a transaction that changes what a key may do: this process forgets its cache once it commits.
    (Other processes hear it from the database triggers.)"""
    db.session.info["api_keys_changed"] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop("api_keys_changed", False):
        cache = current_app.extensions.get("api_key_cache") if has_app_context() else None
        if cache is not None:
            cache.invalidate()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("api_keys_changed", None)

"""Units of work: how a transaction begins, commits, is retried, and what "busy" means, on each database.

* PostgreSQL: the request's transaction begins on its first statement (read committed); rows that a unit changes
  after checking them are locked ``SELECT … FOR UPDATE`` (``rows.lock_card``). A serialization failure or a
  deadlock (SQLSTATE 40001/40P01) rolls the unit back and runs it again, a bounded number of times.
* SQLite has no row locks: a writing unit begins ``BEGIN IMMEDIATE`` and so holds the database's one write lock
  from its first statement to its commit; reading units (GET pages, exports, ledger verification, what a request
  reads before its view) begin ``DEFERRED`` and never take it (WAL: readers and the writer do not block each
  other). A unit that cannot get the lock within the busy timeout (``SQLITE_BUSY_TIMEOUT`` seconds) is not
  retried: it ends in :class:`~portal.services.errors.DatabaseBusy` (``503 busy`` with ``Retry-After``).
"""
from __future__ import annotations

import logging
import sqlite3
import time
from contextvars import ContextVar
from typing import Callable, TypeVar

from flask import has_request_context
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from ..extensions import db
from ..services.errors import DatabaseBusy

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
MAX_ATTEMPTS = 5
#: Seconds a SQLite writer waits for the write lock before its request is answered ``503 busy``.
DEFAULT_BUSY_TIMEOUT = 5.0
BUSY_RETRY_AFTER = 1

#: How SQLite transactions outside a unit of work begin. Outside requests (commands, workers) the default is
#: IMMEDIATE, as they write after reading; a request's reads before its view, and a test thread that only
#: inspects the database, begin DEFERRED.
sqlite_begin_outside_requests: ContextVar[str] = ContextVar("sqlite_begin_outside_requests", default="IMMEDIATE")
#: Set by ``run_unit`` for its duration: "IMMEDIATE" (writes) or "DEFERRED" (reads only).
_unit_begin: ContextVar[str | None] = ContextVar("storage_unit_begin", default=None)


def engine_options(uri: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> dict:
    if not uri.startswith("sqlite"):
        # No pool_pre_ping (a round trip per request): a connection found dead by a unit's first statement is
        # discarded with the rest of the pool by SQLAlchemy, and the unit runs again (``run_unit``).
        return {"pool_recycle": 300}
    return {"connect_args": {"timeout": float(busy_timeout), "check_same_thread": False}}


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below), so we choose its mode
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # The connection's busy timeout (``connect_args``), which a writer's BEGIN below sets aside while it waits.
    connection_record.info["sqlite_busy_timeout_ms"] = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn):
    if conn.dialect.name != "sqlite":
        return
    mode = _unit_begin.get()
    if mode is None:
        mode = "DEFERRED" if has_request_context() else sqlite_begin_outside_requests.get()
    if mode != "IMMEDIATE":
        conn.exec_driver_sql(f"BEGIN {mode}")
        return
    # Wait for the write lock in short steps rather than in SQLite's busy handler, which sleeps 1, 2, 5, 10 … up
    # to 100 ms between attempts (under a steady load of stamps a writer starves there while the lock is free),
    # until the busy timeout; then "database is locked", answered 503 busy by ``run_unit``. The steps stay short
    # (≤ 0.5 ms: the lock is free again after about a millisecond, and a waiter that sleeps longer leaves it idle)
    # and cheap: the attempts go to the driver's connection directly, as does the busy timeout, a setting of that
    # connection set aside meanwhile.
    busy_timeout_ms = conn.connection.info["sqlite_busy_timeout_ms"]
    driver = conn.connection.dbapi_connection
    deadline = time.monotonic() + busy_timeout_ms / 1000
    driver.execute("PRAGMA busy_timeout = 0")
    try:
        delay = 0.0001
        while time.monotonic() < deadline:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "database is locked" not in str(exc):
                    break  # not the lock: the attempt below raises it as SQLAlchemy's error
            time.sleep(delay)
            delay = min(delay * 2, 0.0005)
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the last attempt: SQLAlchemy's error if still busy
    finally:
        driver.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")


def is_retryable(exc: BaseException) -> bool:
    """A PostgreSQL serialization failure or deadlock: the whole unit may simply run again."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    return sqlstate in RETRYABLE_SQLSTATES


def is_busy(exc: BaseException) -> bool:
    """SQLite gave up waiting for its write lock (the busy timeout)."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


def connection_lost(exc: BaseException) -> bool:
    """The database connection died under the statement: nothing of this transaction was committed."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def read_only(view):
    """Mark a view that only reads though its method is POST (a long check started from a form): its unit runs
    as a reading unit, so on SQLite it never holds the write lock."""
    view.storage_read_only = True
    return view


def is_read_only(view) -> bool:
    return getattr(view, "storage_read_only", False)


def writes(view):
    """Mark a GET view that writes (Apple's web service notes a device's fetch of a pass): its unit runs as a
    writing unit (on SQLite ``BEGIN IMMEDIATE``, so the write never has to upgrade a read transaction)."""
    view.storage_writes = True
    return view


def is_writing(view) -> bool:
    return getattr(view, "storage_writes", False)


def run_unit(fn: Callable[[], T], *, write: bool = True, attempts: int = MAX_ATTEMPTS) -> T:
    """Run ``fn`` as one unit of work: commit on success, roll back on error.

    ``write``: the unit may write (SQLite begins it IMMEDIATE); a read-only unit begins DEFERRED. A refusal that
    must leave a trace (``keep_changes``: a wrong PIN's count, the refusal log) commits what was flushed and is
    raised. A serialization failure or deadlock, or a connection that died before anything was committed, runs
    the unit again (bounded); SQLite's busy timeout raises ``DatabaseBusy``.
    """
    session = db.session
    if write and session().in_transaction() and db.engine.dialect.name == "sqlite":
        # What was read before the unit (a request's authentication) ends here, so that the unit begins
        # IMMEDIATE and holds the write lock only while it runs. (Objects read there are expired and re-read.)
        session.commit()
    token = _unit_begin.set("IMMEDIATE" if write else "DEFERRED")
    try:
        for attempt in range(1, attempts + 1):
            try:
                result = fn()
            except Exception as exc:
                if getattr(exc, "keep_changes", False):
                    session.commit()
                    raise
                session.rollback()
                if (is_retryable(exc) or connection_lost(exc)) and attempt < attempts:
                    log.info("retrying unit of work after %s (attempt %d)", type(exc).__name__, attempt)
                    time.sleep(0.01 * attempt)
                    continue
                if is_busy(exc):
                    raise DatabaseBusy(retry_after=BUSY_RETRY_AFTER) from exc
                raise
            try:
                session.commit()
            except Exception as exc:
                session.rollback()
                # A connection lost during COMMIT is not retried: the commit may have happened.
                if is_retryable(exc) and attempt < attempts:
                    log.info("retrying unit of work after %s at commit (attempt %d)", type(exc).__name__, attempt)
                    time.sleep(0.01 * attempt)
                    continue
                if is_busy(exc):
                    raise DatabaseBusy(retry_after=BUSY_RETRY_AFTER) from exc
                raise
            return result
        raise AssertionError("unreachable")
    finally:
        _unit_begin.reset(token)

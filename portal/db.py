"""Database plumbing shared by every request, command and test.

* ``UTCDateTime`` stores timezone-aware UTC datetimes on SQLite (which has no time zones) and PostgreSQL alike.
* SQLite: WAL journal, a busy timeout, and the unit of work of a writing request opened with ``BEGIN IMMEDIATE``
  (SQLAlchemy's pysqlite recipe), because SQLite has no row locks; ``SELECT … FOR UPDATE`` is then a no-op and the
  database-wide write lock serialises the read-check-write units instead. What a request reads before its unit of
  work (the API key, the logged-in user, the vendor) is read in a ``DEFERRED`` transaction that ends when the unit
  begins, so the write lock is held only for the unit itself (see ``begin_unit_of_work``).
* ``run_in_transaction`` is the unit of work of a request or command: commit on success, roll back on error, and
  retry the whole unit a bounded number of times on PostgreSQL serialization failures and deadlocks.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import sqlite3
import time
from contextvars import ContextVar
from typing import Callable, TypeVar

from flask import current_app, has_request_context, request
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import DateTime, TypeDecorator

from .extensions import db

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
MAX_ATTEMPTS = 5
READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}


class UTCDateTime(TypeDecorator):
    """A ``DateTime`` that always comes back timezone-aware in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def engine_options(uri: str) -> dict:
    if not uri.startswith("sqlite"):
        # No pool_pre_ping: it costs a round trip on every request. Connections are recycled after five minutes,
        # and one found dead by a request's first statement (the server restarted, a proxy dropped it) is
        # discarded with the rest of the pool by SQLAlchemy and the unit of work is run again (see
        # ``run_in_transaction`` and ``PortalFlask.preprocess_request``).
        return {"pool_recycle": 300}
    return {"connect_args": {"timeout": 30, "check_same_thread": False, "factory": QueuedWriterConnection}}


class QueuedWriterConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions first queue on an exclusive ``flock`` of a file beside the
    database (``<database>-writers``), released right after the COMMIT or ROLLBACK.

    SQLite lets one writer in at a time; the others retry ``BEGIN IMMEDIATE`` from the busy handler, which
    sleeps 1, 2, 5, 10 … up to 100 ms between attempts: under a steady load of stamps most of the waiting is
    sleeping while the lock is free, and a few requests starve for a tenth of a second. Blocked on the ``flock``
    instead, the kernel wakes the next writer the moment the previous one commits. Only the ``BEGIN IMMEDIATE``
    transactions of this application queue there; SQLite's own lock stays the rule, so anything else writing
    the file (the sqlite3 shell, another program) is still serialised by it, with the busy timeout as before. A
    process that dies holding the ``flock`` releases it with its file descriptors. The queue itself has no
    timeout: behind a writer that hangs inside its transaction, the others wait until the server's worker
    timeout ends that request (the busy timeout used to turn it into "database is locked" after 30 s)."""

    _queue_path: str | None = None
    _queue_fd: int | None = None
    _queued = False

    def queue_for_write(self) -> None:
        if self._queue_path is None or self._queued:
            return
        if self._queue_fd is None:
            self._queue_fd = os.open(self._queue_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._queue_fd, fcntl.LOCK_EX)
        self._queued = True

    def _leave_queue(self) -> None:
        if self._queued:
            self._queued = False
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    #: In the read phase of an optimistic unit of work: a ``DEFERRED`` transaction that has not been through
    #: ``lock_for_write``.
    reading = False
    _changes_at_read = 0

    def begin_reading(self) -> None:
        self.reading = True
        self._changes_at_read = self.total_changes

    def wrote_while_reading(self) -> bool:
        """A write in the read phase took SQLite's write lock itself. SQLite grants that only to a transaction
        whose snapshot is still the newest (else SQLITE_BUSY_SNAPSHOT), so the transaction is as serial as one
        begun ``IMMEDIATE`` — and must not be cut in two."""
        return self.total_changes != self._changes_at_read

    def commit(self):
        try:
            super().commit()
        finally:
            self.reading = False
            self._leave_queue()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self.reading = False
            self._leave_queue()

    def close(self):
        try:
            super().close()
        finally:
            self.reading = False
            self._leave_queue()
            if self._queue_fd is not None:
                os.close(self._queue_fd)
                self._queue_fd = None


def dialect_insert(target):
    """An INSERT for the session's database with its ``ON CONFLICT`` clauses (PostgreSQL's or SQLite's)."""
    module = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(target)


class Prepared:
    """A Core statement compiled once per dialect and run with ``exec_driver_sql``: SQLAlchemy's execution as
    usual (events, errors wrapped, a dead connection invalidated), without the per-call work of finding the
    compiled form in the statement cache and processing the parameters through it — about 25 µs a statement,
    measured on the stamp's writes. Values go through the columns' own bind processors
    (``UTCDateTime`` and the rest), so what is stored is what ``connection.execute`` would have stored."""

    def __init__(self, statement):
        self.statement = statement
        self._plans: dict[str, tuple] = {}

    def _plan(self, dialect) -> tuple:
        compiled = self.statement.compile(dialect=dialect)
        fixed = compiled.params  # values written into the statement itself (``reason="balance"``)
        order = compiled.positiontup if compiled.positional else list(compiled.binds)
        params = []
        for name in order:
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            params.append((name, processor, bind.key, fixed.get(name)))
        return compiled.string, compiled.positional, tuple(params)

    def execute(self, connection, values: dict):
        plan = self._plans.get(connection.dialect.name)
        if plan is None:
            plan = self._plans[connection.dialect.name] = self._plan(connection.dialect)
        sql, positional, params = plan
        processed = [(name, processor(values.get(key, fixed)) if processor else values.get(key, fixed))
                     for name, processor, key, fixed in params]
        if positional:
            return connection.exec_driver_sql(sql, tuple(value for _, value in processed))
        return connection.exec_driver_sql(sql, dict(processed))


def connection_lost(exc: BaseException) -> bool:
    """The database connection died under the statement: nothing of this transaction was committed."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, connection_record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy (below) emit BEGIN itself, so we can choose IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    path = next((row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"), "")
    cursor.close()
    if path and isinstance(dbapi_connection, QueuedWriterConnection):  # a file, not :memory:
        dbapi_connection._queue_path = path + "-writers"


#: How SQLite transactions outside a request begin. Commands (workers, demo) write after reading, so they take
#: the write lock up front; a test thread that only inspects the database sets "DEFERRED" so it never holds the
#: lock that a live server thread is waiting for.
sqlite_begin_outside_requests: ContextVar[str] = ContextVar("sqlite_begin_outside_requests", default="IMMEDIATE")


#: Set in a writing request's WSGI environ once its unit of work (the view) begins.
_UNIT_OF_WORK = "portal.unit_of_work"
#: Set with it when the view is an ``optimistic_unit``; taken by the unit's first ``BEGIN`` (SQLite only).
_OPTIMISTIC = "portal.optimistic_unit"
#: While an optimistic unit reads without the write lock: its DBAPI connection.
_READ_PHASE = "portal.read_phase"


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn):
    if conn.dialect.name != "sqlite":
        return
    # Reads (GET pages, and what any request checks before its view) may share the database; a writing request's
    # unit of work takes the write lock up front, so two requests never both read a card's balance and then both
    # write — or, in an optimistic unit, reads first and takes the lock to write what it then checks again.
    dbapi_connection = conn.connection.dbapi_connection
    if has_request_context():
        mode = "IMMEDIATE" if request.environ.get(_UNIT_OF_WORK) else "DEFERRED"
        if request.environ.pop(_OPTIMISTIC, False) and isinstance(dbapi_connection, QueuedWriterConnection):
            conn.exec_driver_sql("BEGIN DEFERRED")
            dbapi_connection.begin_reading()
            request.environ[_READ_PHASE] = dbapi_connection
            return
    else:
        mode = sqlite_begin_outside_requests.get()
    if mode == "IMMEDIATE" and isinstance(dbapi_connection, QueuedWriterConnection):
        dbapi_connection.queue_for_write()
    conn.exec_driver_sql(f"BEGIN {mode}")


def optimistic_unit(view):
    """Mark a view whose unit of work may run optimistically on SQLite: it reads in a ``DEFERRED`` transaction,
    without the write lock, and takes the lock only to write (``lock_for_write``), where the writer checks that
    what it read still holds. Used by the balance changes, whose reads (the card, its program, the rules) are
    most of the unit: other requests' writes no longer wait for them. Safe on any view: a write that does not
    go through ``lock_for_write`` makes SQLite take the lock itself, which it grants only while nothing was
    committed since the transaction's snapshot (else SQLITE_BUSY_SNAPSHOT, and the unit is run again the usual
    way, holding the lock from its start). PostgreSQL, with row locks, is unaffected."""
    view.optimistic_unit = True
    return view


class StaleRead(Exception):
    """What an optimistic unit read changed before it could write: the unit is run again, holding the lock."""


def lock_for_write(connection) -> bool:
    """Before an optimistic unit's first write: end the read phase's snapshot and take the write lock in the
    writers' queue. True when this happened — the caller must then make its writes conditional on what it read
    and raise ``StaleRead`` when they find it changed. False (nothing to check) when the unit already holds the
    lock, and on PostgreSQL."""
    dbapi_connection = connection.connection.dbapi_connection
    if not getattr(dbapi_connection, "reading", False):
        return False
    dbapi_connection.reading = False
    if has_request_context():
        request.environ.pop(_READ_PHASE, None)
    if dbapi_connection.wrote_while_reading():
        return False
    _on_driver(dbapi_connection, "COMMIT")  # the read snapshot, which wrote nothing
    dbapi_connection.queue_for_write()
    _on_driver(dbapi_connection, "BEGIN IMMEDIATE")
    return True


def _on_driver(dbapi_connection, statement: str) -> None:
    """A statement on the driver's connection (the hot path of every stamp), its errors wrapped as SQLAlchemy's."""
    try:
        dbapi_connection.execute(statement)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


def begin_unit_of_work() -> None:
    """Called as a request's view is about to run. On SQLite, for a writing request (POST, PUT, PATCH, DELETE):
    end the ``DEFERRED`` transaction in which the before-request hooks read (nothing written there is lost: it is
    committed), so that the view's unit of work begins ``IMMEDIATE`` and holds the database's one write lock only
    while it runs — not while the request authenticates. The hooks' checks then ran in an earlier snapshot than
    the unit, as with PostgreSQL's read committed; the unit re-reads what it changes under the lock. Objects the
    hooks loaded (the logged-in user) are expired by the commit and re-read on first use."""
    if request.method in READ_ONLY_METHODS:
        return
    request.environ[_UNIT_OF_WORK] = True
    if db.engine.dialect.name != "sqlite":
        return
    session = db.session()
    if session.in_transaction():
        session.commit()
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "optimistic_unit", False):
        request.environ[_OPTIMISTIC] = True


def is_retryable(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    # SQLite: "database is locked" after the busy timeout.
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


def _end_read_phase() -> bool:
    """Forget this attempt's optimistic read phase; True when the attempt is still in it, having written nothing."""
    connection = request.environ.pop(_READ_PHASE, None) if has_request_context() else None
    return connection is not None and connection.reading and not connection.wrote_while_reading()


def _run_again_with_lock(exc: BaseException) -> None:
    db.session.rollback()
    if has_request_context():
        request.environ.pop(_OPTIMISTIC, None)
        request.environ.pop(_READ_PHASE, None)
    log.debug("optimistic unit of work run again with the write lock (%s)", type(exc).__name__)


#: SQLite's answer to a write in a transaction whose snapshot is no longer the newest (not in the sqlite3 module).
SQLITE_BUSY_SNAPSHOT = 517


def needs_write_lock(exc: BaseException) -> bool:
    """An optimistic unit must run again holding the write lock: what it read changed, or a write in its read
    phase found the snapshot outdated."""
    if isinstance(exc, StaleRead):
        return True
    orig = getattr(exc, "orig", None)
    return isinstance(exc, OperationalError) and getattr(orig, "sqlite_errorcode", None) == SQLITE_BUSY_SNAPSHOT


def run_in_transaction(fn: Callable[[], T], *, attempts: int = MAX_ATTEMPTS) -> T:
    """Run ``fn`` as one unit of work: commit on success, roll back and retry on serialization failure, deadlock,
    or a connection that turned out to be dead before anything was committed. An optimistic unit (SQLite) that
    must hold the write lock after all is run again at once, the usual way."""
    for attempt in range(1, attempts + 1):
        try:
            result = fn()
        except Exception as exc:
            keep_changes = getattr(exc, "keep_changes", False)
            if (needs_write_lock(exc) or keep_changes and _end_read_phase()) and attempt < attempts:
                # (A refusal decided in the read phase, its trace not yet written, is decided again under the lock.)
                _run_again_with_lock(exc)
                continue
            _end_read_phase()
            if keep_changes:
                # A refusal that must leave a trace (failed PIN count, refusal log): keep what was flushed.
                db.session.commit()
                raise
            db.session.rollback()
            if (is_retryable(exc) or connection_lost(exc)) and attempt < attempts:
                log.info("retrying unit of work after %s (attempt %d)", type(exc).__name__, attempt)
                time.sleep(0.01 * attempt)
                continue
            raise
        _end_read_phase()
        try:
            db.session.commit()
        except Exception as exc:
            if needs_write_lock(exc) and attempt < attempts:  # a change flushed only now, in the read phase
                _run_again_with_lock(exc)
                continue
            db.session.rollback()
            # A connection lost during COMMIT is not retried: the commit may have happened.
            if is_retryable(exc) and attempt < attempts:
                log.info("retrying unit of work after %s at commit (attempt %d)", type(exc).__name__, attempt)
                time.sleep(0.01 * attempt)
                continue
            raise
        return result
    raise AssertionError("unreachable")

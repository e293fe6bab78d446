"""The outbox workers' transactions (wallet passes, mail), run outside requests: the session they run in, the
claim that leases rows to one worker, and when a failed row is tried again."""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..extensions import db
from .transactions import sqlite_begin_outside_requests


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@contextmanager
def worker_transaction(*, write: bool) -> Iterator[Session]:
    """A session and its transaction, committed when the block ends (rolled back if it raises). On SQLite a
    writing one begins ``IMMEDIATE`` — the database's write lock then serialises the workers' claims — and a
    reading one ``DEFERRED``. Objects stay usable after the commit (``expire_on_commit=False``)."""
    token = sqlite_begin_outside_requests.set("IMMEDIATE" if write else "DEFERRED")
    try:
        with Session(db.engine, expire_on_commit=False) as session, session.begin():
            yield session
    finally:
        sqlite_begin_outside_requests.reset(token)


def serialise_claims(session: Session, key: int) -> None:
    """One claimer at a time until this transaction ends: a transaction-level advisory lock on PostgreSQL. On
    SQLite the claim's ``BEGIN IMMEDIATE`` already is one."""
    if _postgresql(session):
        session.execute(select(func.pg_advisory_xact_lock(key)))


def skip_locked(stmt, session: Session, **options):
    """``stmt`` without the rows another worker's claim has locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
    ``options`` such as ``of=``). SQLite has no row locks; its claims run under the write lock."""
    return stmt.with_for_update(skip_locked=True, **options) if _postgresql(session) else stmt


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds until a row that failed ``attempts`` times is tried again: exponential (base · 2^(attempts-1)),
    capped, with "equal jitter" (between half and all of it), so rows that failed together do not retry together."""
    delay = min(cap, base * (2 ** min(max(attempts - 1, 0), 30)))
    return delay / 2 + random.uniform(0, delay / 2)

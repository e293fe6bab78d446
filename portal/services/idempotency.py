"""Idempotency-Key handling for every POST that changes a balance.

Claim first: ``INSERT … ON CONFLICT DO NOTHING`` in the request's own transaction. On PostgreSQL a second request
with the same key waits on the first one's uncommitted claim, then sees its stored response and replays it; on
SQLite the write lock serialises the two. A key is scoped to the client (API key or user) and kept for
``IDEMPOTENCY_TTL_HOURS`` (at least 24 h).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from typing import Callable

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from ..db import dialect_insert
from ..extensions import db
from ..models import IdempotencyRecord
from . import clock
from .errors import Conflict, DomainError, IdempotencyKeyReused, ValidationError


def request_fingerprint(method: str, path: str, body) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def validate_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise ValidationError(_l("The Idempotency-Key header must be 1 to 255 printable characters."))
    return key


def claim(scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Claim ``key`` for this request. Returns None when the caller should do the work, or the stored record
    whose response must be replayed."""
    key = validate_key(key)
    stmt = dialect_insert(IdempotencyRecord).values(scope=scope, key=key, request_hash=fingerprint,
                                            created_at=clock.now()).on_conflict_do_nothing(
        index_elements=["scope", "key"]).returning(IdempotencyRecord.id)
    claimed = db.session.execute(stmt).first()  # rowcount is not reliable here (-1 on psycopg)
    _maybe_purge()
    if claimed is not None:
        return None
    record = db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                               IdempotencyRecord.key == key)
                               .execution_options(populate_existing=True))
    if record is None:  # purged between the two statements
        return claim(scope, key, fingerprint)
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    if record.status_code is None:
        raise Conflict(_l("A request with this Idempotency-Key is still being processed."))
    return record


def store(scope: str, key: str, status: int, body: dict) -> None:
    record = db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                               IdempotencyRecord.key == key.strip()))
    if record is not None:
        record.status_code = status
        record.response_body = json.dumps(body, separators=(",", ":"))
        db.session.flush()


def _maybe_purge() -> None:
    if random.random() < 0.01:
        purge()


def purge() -> int:
    hours = max(24, int(current_app.config.get("IDEMPOTENCY_TTL_HOURS", 48)))
    cutoff = clock.now() - dt.timedelta(hours=hours)
    return db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)).rowcount


def run_once(scope: str, key: str | None, fingerprint: Callable[[], str], work: Callable[[str | None], tuple],
             refusal: Callable[[DomainError], tuple]) -> tuple[int, dict, bool]:
    """The one idempotency wrapper (the JSON API's ``Idempotency-Key`` header, the tablet's form key): run
    ``work(key)`` at most once per ``(scope, key)`` and return ``(status, body, replayed)``.

    ``work`` returns ``(status, body)``. A refusal that leaves a trace (``keep_changes``: a wrong PIN, a
    cooldown) did run: ``refusal(error)`` makes its ``(status, body)``, which is stored and replayed like a
    success. Any other error propagates and rolls back with the claim, so a corrected retry works. Without a
    key, ``work`` simply runs."""
    if key is not None:
        record = claim(scope, key, fingerprint())
        if record is not None:
            return record.status_code, json.loads(record.response_body or "{}"), True
        key = key.strip()
    try:
        status, body = work(key)
    except DomainError as error:
        if not error.keep_changes:
            raise
        status, body = refusal(error)
    if key is not None:
        store(scope, key, status, body)
    return status, body, False

"""Idempotency-Key handling for every POST that changes a balance.

Claim first: ``INSERT … ON CONFLICT DO NOTHING`` in the request's own transaction. On PostgreSQL a second request
with the same key waits on the first one's uncommitted claim, then sees its stored response and replays it; on
SQLite the write lock serialises the two. A key is scoped to the client (API key or user) and kept for
``IDEMPOTENCY_TTL_HOURS`` (at least 24 h).

The request's fingerprint is an HMAC keyed by a server secret, not a plain hash: a body carries a ``staff_pin``, and a
plain SHA-256 of it would give the PIN back to anyone with the table after 10⁴ guesses. Stored responses never hold a
PIN either (``SECRET_FIELDS`` are dropped before a body is stored).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
from typing import Callable

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from ..storage import dialect_insert
from ..extensions import db
from ..models import IdempotencyRecord
from . import clock
from .errors import Conflict, DomainError, IdempotencyKeyReused, ValidationError


#: Never kept in a stored response, wherever they appear in it.
SECRET_FIELDS = frozenset({"staff_pin", "pin"})
_FINGERPRINT_LABEL = b"portal/idempotency-fingerprint/v1"


def _fingerprint_key() -> bytes:
    """A key of its own, derived from the PIN pepper (kept outside the database, like the PINs' own digests): the
    table alone lets nobody test PIN guesses against a fingerprint."""
    return hmac.new(current_app.config["PIN_PEPPER"].encode(), _FINGERPRINT_LABEL, hashlib.sha256).digest()


def request_fingerprint(method: str, path: str, body) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(_fingerprint_key(), f"{method} {path}\n{canonical}".encode(), hashlib.sha256).hexdigest()


def _without_secrets(value):
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


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


def store(scope: str, key: str, status: int, body: dict, card_id: int | None = None) -> None:
    """Keep the response for replays. ``card_id``: the card whose customer data the body shows, so that erasing
    the card's data redacts this copy too (``redact_card``)."""
    record = db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                               IdempotencyRecord.key == key.strip()))
    if record is not None:
        record.status_code = status
        record.response_body = json.dumps(_without_secrets(body), separators=(",", ":"))
        record.card_id = card_id
        db.session.flush()


def _redacted(value):
    """``value`` without personal data: every ``customer`` block emptied, every free-text ``note`` blanked."""
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for name, item in value.items():
        if name == "customer" and isinstance(item, dict):
            out[name] = {**item, "name": "", "email": None, "phone": None}
        elif name == "note" and isinstance(item, str):
            out[name] = ""
        else:
            out[name] = _redacted(item)
    return out


def redact_card(card_ids: list[int]) -> int:
    """Erasure: the stored responses about these cards lose the customer's name, email, phone and notes. They are
    kept (not deleted), so a retried request is still answered from them and never runs twice."""
    records = list(db.session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.card_id.in_(card_ids),
                                                                      IdempotencyRecord.response_body.is_not(None))))
    for record in records:
        try:
            body = json.loads(record.response_body)
        except ValueError:
            body = {}
        record.response_body = json.dumps(_redacted(body), separators=(",", ":"))
    db.session.flush()
    return len(records)


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

    ``work`` returns ``(status, body)``, or ``(status, body, card_id)`` when the body shows that card's customer
    data (erasing the card then redacts the stored copy). A refusal that leaves a trace (``keep_changes``: a wrong PIN, a
    cooldown) did run: ``refusal(error)`` makes its ``(status, body)``, which is stored and replayed like a
    success. Any other error propagates and rolls back with the claim, so a corrected retry works. Without a
    key, ``work`` simply runs."""
    if key is not None:
        record = claim(scope, key, fingerprint())
        if record is not None:
            return record.status_code, json.loads(record.response_body or "{}"), True
        key = key.strip()
    try:
        status, body, *card = work(key)
    except DomainError as error:
        if not error.keep_changes:
            raise
        (status, body), card = refusal(error), []
    if key is not None:
        store(scope, key, status, body, card_id=card[0] if card else None)
    return status, body, False

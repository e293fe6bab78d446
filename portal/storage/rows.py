"""The rows whose writes need care: a card locked before its balance is checked, the ledger's appends, the
idempotency claims' ``INSERT … ON CONFLICT DO NOTHING``, and the API-key look-up of every API request."""
from __future__ import annotations

from sqlalchemy import bindparam, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import ApiKey, LoyaltyCard, LoyaltyTransaction, Vendor, WalletOutbox


def dialect_insert(target):
    """An INSERT for the session's database with its ``ON CONFLICT`` clauses (PostgreSQL's or SQLite's)."""
    module = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(target)


def locked(stmt):
    """``stmt`` (a select of ``LoyaltyCard``, maybe joined) reading the card under a row lock for the rest of the
    transaction: ``SELECT … FOR UPDATE OF loyalty_cards`` on PostgreSQL. SQLite ignores FOR UPDATE; there the
    writing unit holds the database's write lock from its ``BEGIN IMMEDIATE``. ``populate_existing``: a card
    the session already held is refreshed with what was read under the lock."""
    return stmt.with_for_update(of=LoyaltyCard).execution_options(populate_existing=True)


def lock_card(card: LoyaltyCard) -> LoyaltyCard:
    """Re-read a card the session holds, under the row lock."""
    return db.session.scalar(locked(select(LoyaltyCard).where(LoyaltyCard.id == card.id)))


def append_ledger_row(card: LoyaltyCard, tx: LoyaltyTransaction, card_changes: dict) -> LoyaltyTransaction:
    """Write a ledger row, the card's new state and the wallet outbox row announcing it, in the unit's
    transaction. The card must be locked.

    Three Core statements on the session's connection (SQLAlchemy's ordinary execution: statement cache, events,
    errors; without the ORM's per-statement work, which they do not need), each built once below and run with its
    values as parameters: the ledger row with the values ``tx`` was given, the
    card's UPDATE, and the outbox row (``card_id`` and ``reason``). SQLAlchemy adds every column a statement is not
    given that has a default (Python or server side) and fills it in, so defaults hold. Then the loaded card holds
    what was written, as if re-read, and ``tx`` is the session's persistent row with its new id. (The ORM's unit
    of work would do the same in about three times the time: this is every stamp's hot path.)"""
    session = db.session
    conn = session.connection()
    values = {key: value for key, value in inspect(tx).dict.items() if key in _TX.c}
    tx.id = conn.execute(_INSERT_TX, values).scalar_one()
    conn.execute(_UPDATE_CARD, {**card_changes, "locked_card_id": card.id})
    conn.execute(_INSERT_OUTBOX, {"card_id": card.id, "reason": "balance"})
    for name, value in card_changes.items():
        set_committed_value(card, name, value)
    make_transient_to_detached(tx)  # a persistent row of the session, as if it had been read back
    session.add(tx)
    return tx


_TX = LoyaltyTransaction.__table__
_CARDS = LoyaltyCard.__table__
_OUTBOX = WalletOutbox.__table__
# Built once: the columns a call sets are its parameters' keys (the SET clause of the UPDATE too); SQLAlchemy
# compiles each set of keys once and keeps it in its statement cache.
_INSERT_TX = insert(_TX).returning(_TX.c.id)
_UPDATE_CARD = update(_CARDS).where(_CARDS.c.id == bindparam("locked_card_id"))
_INSERT_OUTBOX = insert(_OUTBOX)

_API_KEY = (select(ApiKey.id, ApiKey.scope, ApiKey.vendor_id, ApiKey.name, Vendor.active, Vendor.locale)
            .outerjoin(Vendor, ApiKey.vendor_id == Vendor.id)
            .where(ApiKey.key_hash == bindparam("digest"), ApiKey.revoked_at.is_(None)))


def api_key_row(digest: str):
    """The live key with this SHA-256 digest and its vendor's status: one indexed SELECT, or None."""
    return db.session.connection().execute(_API_KEY, {"digest": digest}).first()

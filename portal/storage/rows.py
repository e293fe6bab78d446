"""The rows whose writes need care: a card locked before its balance is checked, the ledger's appends, the
idempotency claims' ``INSERT … ON CONFLICT DO NOTHING``, and the API-key look-up of every API request."""
from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

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
    transaction, through the ORM's ordinary flush (so every column default holds). The card must be locked."""
    for name, value in card_changes.items():
        setattr(card, name, value)
    db.session.add(tx)
    db.session.add(WalletOutbox(card_id=card.id, reason="balance"))
    db.session.flush()
    return tx


_API_KEY = (select(ApiKey.id, ApiKey.scope, ApiKey.vendor_id, ApiKey.name, Vendor.active, Vendor.locale)
            .outerjoin(Vendor, ApiKey.vendor_id == Vendor.id)
            .where(ApiKey.key_hash == bindparam("digest"), ApiKey.revoked_at.is_(None)))


def api_key_row(digest: str):
    """The live key with this SHA-256 digest and its vendor's status: one indexed SELECT, or None."""
    return db.session.execute(_API_KEY, {"digest": digest}).first()

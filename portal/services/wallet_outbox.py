"""The wallet-update outbox: a row per balance change, written in the same transaction as the change, and one
pending row per card when its program's design changes. The wallet worker (services/wallet/worker.py) claims and
delivers them."""
from __future__ import annotations

from sqlalchemy import exists, insert, literal, select

from ..storage.types import UTCDateTime
from ..extensions import db
from ..models import LoyaltyCard, WalletOutbox
from . import clock


def enqueue(card: LoyaltyCard, reason: str = "balance") -> WalletOutbox:
    now = clock.now()
    row = WalletOutbox(card_id=card.id, reason=reason, created_at=now, available_at=now, attempts=0)
    db.session.add(row)
    return row


def enqueue_program(program_id: int, reason: str = "design") -> None:
    """An update for every card of the program still in use, in the caller's transaction: one INSERT … SELECT.

    Coalesced: a card that already has a row waiting (not delivered, not claimed by a worker) gets none, since the
    worker sends the card as it is when it sends (an edit made twice before the worker runs is one update). A row a
    worker has already claimed may carry the card as it was before this change, so such a card gets a new row.
    """
    now = clock.now()
    waiting = exists().where(WalletOutbox.card_id == LoyaltyCard.id, WalletOutbox.delivered_at.is_(None),
                             WalletOutbox.claimed_until.is_(None))
    cards = select(LoyaltyCard.id, literal(reason), literal(now, UTCDateTime()), literal(now, UTCDateTime()),
                   literal(0)).where(LoyaltyCard.program_id == program_id, LoyaltyCard.erased_at.is_(None), ~waiting)
    db.session.execute(insert(WalletOutbox).from_select(
        ["card_id", "reason", "created_at", "available_at", "attempts"], cards))

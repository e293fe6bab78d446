"""The wallet-update outbox: a row per balance change, written in the same transaction as the change.
The wallet worker (issue: customers' side) claims and delivers them."""
from __future__ import annotations

from ..extensions import db
from ..models import LoyaltyCard, WalletOutbox
from . import clock


def enqueue(card: LoyaltyCard, reason: str = "balance") -> WalletOutbox:
    now = clock.now()
    row = WalletOutbox(card_id=card.id, reason=reason, created_at=now, available_at=now, attempts=0)
    db.session.add(row)
    return row

"""The append-only ledger: the only way a balance changes.

Every transaction stores ``balance_after`` and ``hash`` = SHA-256(previous hash of the card's chain + a canonical
encoding of this row). The database refuses UPDATE and DELETE on the table (triggers in the migration); a mistake
is corrected by a new ``void`` or ``adjustment`` row. ``verify`` re-derives balances and chains.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from .. import storage
from ..extensions import db
from ..models import LoyaltyCard, LoyaltyProgram, LoyaltyTransaction
from . import clock
from .actor import Actor
from .errors import InsufficientBalance

GENESIS = "0" * 64
LEDGER_COLUMNS = (LoyaltyTransaction.id, LoyaltyTransaction.card_id, LoyaltyTransaction.type,
                  LoyaltyTransaction.delta, LoyaltyTransaction.balance_after, LoyaltyTransaction.amount,
                  LoyaltyTransaction.reward_id, LoyaltyTransaction.voided_transaction_id, LoyaltyTransaction.note,
                  LoyaltyTransaction.created_at, LoyaltyTransaction.prev_hash, LoyaltyTransaction.hash)


def canonical(tx) -> bytes:
    """``tx``: a LoyaltyTransaction or a row with the same fields."""
    fields = {
        "card_id": tx.card_id,
        "type": tx.type,
        "delta": tx.delta,
        "balance_after": tx.balance_after,
        "amount": None if tx.amount is None else f"{Decimal(tx.amount):.2f}",
        "reward_id": tx.reward_id,
        "voided_transaction_id": tx.voided_transaction_id,
        "note": tx.note or "",
        "created_at": tx.created_at.astimezone(clock.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str | None, tx) -> str:
    return hashlib.sha256((prev_hash or GENESIS).encode() + b"|" + canonical(tx)).hexdigest()


def append(card: LoyaltyCard, actor: Actor, *, type: str, delta: int, amount: Decimal | None = None,
           reward_id: int | None = None, staff=None, note: str = "", idempotency_key: str | None = None,
           voided_transaction_id: int | None = None, card_changes: dict | None = None) -> LoyaltyTransaction:
    """Append one transaction to a card that the caller has locked, and move its balance by ``delta``.

    ``card_changes``: other columns of the card that change with this transaction (``last_stamp_at``,
    ``rewards_redeemed``). The ledger row, the card and the wallet outbox row are written by the storage seam
    in the unit's transaction; the returned transaction is a persistent row with its id.
    """
    program: LoyaltyProgram = card.program
    balance_field = "stamps" if program.type == "stamps" else "points"
    new_balance = getattr(card, balance_field) + delta
    if new_balance < 0:
        raise InsufficientBalance()
    now = clock.now()
    tx = LoyaltyTransaction(
        card_id=card.id, program_id=program.id, type=type, delta=delta, balance_after=new_balance, amount=amount,
        reward_id=reward_id, staff_pin_id=staff.id if staff is not None else None,
        staff_name=staff.staff_name if staff is not None else (actor.name or None),
        user_id=actor.user_id, api_key_id=actor.api_key_id, note=note or "",
        idempotency_key=idempotency_key, voided_transaction_id=voided_transaction_id, created_at=now,
        prev_hash=card.chain_head)
    tx.hash = chain_hash(tx.prev_hash, tx)
    changes = dict(card_changes or {})
    changes[balance_field] = new_balance
    if delta > 0 and type in ("stamp_add", "points_earn"):
        lifetime = "lifetime_stamps" if balance_field == "stamps" else "lifetime_points"
        changes[lifetime] = getattr(card, lifetime) + delta
    changes["updated_at"] = now
    changes["chain_head"] = tx.hash
    return storage.append_ledger_row(card, tx, changes)


@dataclass
class LedgerReport:
    cards_checked: int = 0
    transactions_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "cards_checked": self.cards_checked,
                "transactions_checked": self.transactions_checked, "problems": self.problems}


def verify(vendor_id: int | None = None, batch: int = 2000, max_problems: int = 1000) -> LedgerReport:
    """Check every card: balance == sum of its transactions, balance_after runs, hash chain intact.

    Streams the ledger ordered by (card, id) in batches, so memory stays flat with millions of rows.
    """
    report = LedgerReport()
    card_stmt = select(LoyaltyCard.id, LoyaltyCard.stamps, LoyaltyCard.points, LoyaltyCard.chain_head,
                       LoyaltyProgram.type).join(
        LoyaltyProgram, LoyaltyCard.program_id == LoyaltyProgram.id).order_by(LoyaltyCard.id)
    if vendor_id is not None:
        card_stmt = card_stmt.where(LoyaltyProgram.vendor_id == vendor_id)
    last_card_id = 0
    while True:
        cards = db.session.execute(card_stmt.where(LoyaltyCard.id > last_card_id).limit(batch)).all()
        if not cards:
            break
        last_card_id = cards[-1].id
        ids = [c.id for c in cards]
        # Plain rows, not ORM objects: nothing accumulates in the session (verify runs inside web requests too).
        txs = db.session.execute(select(*LEDGER_COLUMNS).where(LoyaltyTransaction.card_id.in_(ids))
                                 .order_by(LoyaltyTransaction.card_id, LoyaltyTransaction.id)).all()
        by_card: dict[int, list] = {}
        for tx in txs:
            by_card.setdefault(tx.card_id, []).append(tx)
        for card in cards:
            report.cards_checked += 1
            _verify_card(card, by_card.get(card.id, []), report)
            if len(report.problems) >= max_problems:
                return report
    return report


def _verify_card(card, txs: list, report: LedgerReport) -> None:
    balance = card.stamps if card.type == "stamps" else card.points
    other = card.points if card.type == "stamps" else card.stamps
    running, prev = 0, None
    for tx in txs:
        report.transactions_checked += 1
        running += tx.delta
        if tx.balance_after != running:
            report.problems.append(f"card {card.id}: transaction {tx.id} says balance_after={tx.balance_after}, "
                                   f"the ledger sums to {running}")
        if running < 0:
            report.problems.append(f"card {card.id}: balance negative after transaction {tx.id}")
        if tx.prev_hash != prev:
            report.problems.append(f"card {card.id}: transaction {tx.id} does not chain to the previous one")
        if tx.hash != chain_hash(tx.prev_hash, tx):
            report.problems.append(f"card {card.id}: transaction {tx.id} hash mismatch (row altered)")
        prev = tx.hash
    if running != balance:
        report.problems.append(f"card {card.id}: balance {balance} but transactions sum to {running}")
    if card.chain_head != prev:
        report.problems.append(f"card {card.id}: the card's chain head does not match its newest transaction")
    if other != 0:
        report.problems.append(f"card {card.id}: unexpected balance {other} in the other unit")

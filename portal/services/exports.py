"""CSV exports of a vendor's cards and transactions, streamed.

Rows are read in keyset-paginated batches (``WHERE id > :last ORDER BY id LIMIT :batch``) as plain column tuples,
written to a small buffer and yielded batch by batch, so memory stays flat whatever the number of rows and no
long OFFSET scans happen. Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` …) are
prefixed with an apostrophe (CSV injection).
"""
from __future__ import annotations

import csv
import io
from typing import Iterator

from sqlalchemy import func, select

from ..extensions import db
from ..models import LoyaltyCard, LoyaltyProgram, LoyaltyReward, LoyaltyTransaction, LoyaltyTransactionNote
from .actor import Actor
from .errors import NotFound

BATCH = 2000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CARD_COLUMNS = ("card_number", "program", "customer_name", "customer_email", "customer_phone", "locale", "stamps",
                "points", "lifetime_stamps", "lifetime_points", "rewards_redeemed", "created_at", "updated_at",
                "erased")
TRANSACTION_COLUMNS = ("id", "created_at", "program", "card_number", "type", "delta", "balance_after", "amount",
                       "reward", "staff_name", "note", "voided_transaction_id")


def safe_text(value) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def _iso(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


def _vendor_id(actor: Actor) -> int:
    if actor.vendor_id is None:
        raise NotFound()
    return actor.vendor_id


def _rows(stmt) -> list:
    """One batch as plain tuples through Core (no ORM identity map: nothing accumulates between batches)."""
    return db.session.connection().execute(stmt).all()


def _stream(header, fetch_batch, to_row) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield "\ufeff" + buffer.getvalue()  # the BOM lets spreadsheet programs read UTF-8
    last_id = 0
    while True:
        rows = fetch_batch(last_id)
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow(to_row(row))
        last_id = rows[-1][0]
        yield buffer.getvalue()
        if len(rows) < BATCH:
            return


def cards_csv(actor: Actor, program_id: int | None = None) -> Iterator[str]:
    vendor_id = _vendor_id(actor)
    c = LoyaltyCard
    stmt = (select(c.id, c.card_number, LoyaltyProgram.name.label("program"), c.customer_name, c.customer_email,
                   c.customer_phone, c.locale, c.stamps, c.points, c.lifetime_stamps, c.lifetime_points,
                   c.rewards_redeemed, c.created_at, c.updated_at, c.erased_at)
            .join(LoyaltyProgram, c.program_id == LoyaltyProgram.id).where(LoyaltyProgram.vendor_id == vendor_id))
    if program_id is not None:
        stmt = stmt.where(c.program_id == program_id)

    def fetch(last_id):
        return _rows(stmt.where(c.id > last_id).order_by(c.id).limit(BATCH))

    def to_row(r):
        return (r[1], safe_text(r[2]), safe_text(r[3]), safe_text(r[4]), safe_text(r[5]), r[6], r[7], r[8], r[9],
                r[10], r[11], _iso(r[12]), _iso(r[13]), "yes" if r[14] else "")

    return _stream(CARD_COLUMNS, fetch, to_row)


def transactions_csv(actor: Actor, program_id: int | None = None) -> Iterator[str]:
    vendor_id = _vendor_id(actor)
    t = LoyaltyTransaction
    stmt = (select(t.id, t.created_at, LoyaltyProgram.name.label("program"), LoyaltyCard.card_number, t.type,
                   t.delta, t.balance_after, t.amount, LoyaltyReward.name.label("reward"), t.staff_name,
                   func.coalesce(LoyaltyTransactionNote.note, t.note), t.voided_transaction_id)
            .join(LoyaltyProgram, t.program_id == LoyaltyProgram.id)
            .join(LoyaltyCard, t.card_id == LoyaltyCard.id)
            .outerjoin(LoyaltyReward, t.reward_id == LoyaltyReward.id)
            .outerjoin(LoyaltyTransactionNote, LoyaltyTransactionNote.transaction_id == t.id)
            .where(LoyaltyProgram.vendor_id == vendor_id))
    if program_id is not None:
        stmt = stmt.where(t.program_id == program_id)

    def fetch(last_id):
        return _rows(stmt.where(t.id > last_id).order_by(t.id).limit(BATCH))

    def to_row(r):
        return (r[0], _iso(r[1]), safe_text(r[2]), r[3], r[4], r[5], r[6], "" if r[7] is None else f"{r[7]:.2f}",
                safe_text(r[8]), safe_text(r[9]), safe_text(r[10]), r[11] or "")

    return _stream(TRANSACTION_COLUMNS, fetch, to_row)

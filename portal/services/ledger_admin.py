"""The one sanctioned way around the ledger's no-UPDATE/no-DELETE triggers: removing the demo's own rows
(``loyalty demo --reset``). Nothing else in the product calls this.

The triggers are switched off inside this transaction only (PostgreSQL: ``ALTER TABLE … DISABLE TRIGGER``, which
is transactional and takes an exclusive lock on the table; SQLite: the trigger is dropped and re-created from its
own stored SQL) and are back on when the transaction commits or rolls back.
"""
from __future__ import annotations

from sqlalchemy import delete, text

from ..extensions import db
from ..models import LoyaltyTransaction

TRIGGERS = ("loyalty_transactions_no_update", "loyalty_transactions_no_delete")


def delete_ledger_rows(card_ids: list[int]) -> None:
    if not card_ids:
        return
    dialect = db.session.get_bind().dialect.name
    saved: list[str] = []
    if dialect == "postgresql":
        for name in TRIGGERS:
            db.session.execute(text(f"ALTER TABLE loyalty_transactions DISABLE TRIGGER {name}"))
    else:
        for name in TRIGGERS:
            sql = db.session.scalar(text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                                    {"n": name})
            if sql:
                saved.append(sql)
                db.session.execute(text(f"DROP TRIGGER {name}"))
    # Voids first: they reference the rows they void.
    db.session.execute(delete(LoyaltyTransaction).where(LoyaltyTransaction.card_id.in_(card_ids),
                                                        LoyaltyTransaction.voided_transaction_id.is_not(None)))
    db.session.execute(delete(LoyaltyTransaction).where(LoyaltyTransaction.card_id.in_(card_ids)))
    if dialect == "postgresql":
        for name in TRIGGERS:
            db.session.execute(text(f"ALTER TABLE loyalty_transactions ENABLE TRIGGER {name}"))
    else:
        for sql in saved:
            db.session.execute(text(sql))

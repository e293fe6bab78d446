"""Replacing and merging cards; notes out of the hashed ledger; stored responses know their card

* ``retired_cards``: a card identity that no longer works (number, Apple serial and token, Google object), after
  a replacement (lost phone) or a merge, with who did it and when. An old number is refused with
  ``card_replaced``; an old Apple serial still answers the PassKit web service, with a voided pass.
* ``loyalty_transaction_notes``: a transaction's free-text note, outside the hash-chained (and undeletable) ledger
  row, so that erasing a customer's data can delete it. Rows written before this revision keep their note in
  ``loyalty_transactions.note``.
* ``idempotency_keys.card_id``: the card whose data a stored response shows, so erasure can redact it.

Plain CREATE TABLE / ADD COLUMN on both databases: no batch copy of a table with triggers.

Revision ID: card02_replace
Revises: card01_mail
"""
from alembic import op
import sqlalchemy as sa

revision = "card02_replace"
down_revision = "card01_mail"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "retired_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("successor_card_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("card_number", sa.String(length=20), nullable=False),
        sa.Column("apple_serial", sa.String(length=64), nullable=False),
        sa.Column("apple_auth_token", sa.String(length=64), nullable=False),
        sa.Column("google_object_id", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("by_customer", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=120), nullable=False),
        sa.Column("out_transaction_id", sa.Integer(), nullable=True),
        sa.Column("in_transaction_id", sa.Integer(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("reason IN ('replaced', 'merged')", name=op.f("ck_retired_cards_reason")),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"], name=op.f("fk_retired_cards_card_id_loyalty_cards"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["successor_card_id"], ["loyalty_cards.id"],
                                name=op.f("fk_retired_cards_successor_card_id_loyalty_cards"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_retired_cards_user_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], name=op.f("fk_retired_cards_api_key_id_api_keys"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["out_transaction_id"], ["loyalty_transactions.id"],
                                name=op.f("fk_retired_cards_out_transaction_id_loyalty_transactions"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["in_transaction_id"], ["loyalty_transactions.id"],
                                name=op.f("fk_retired_cards_in_transaction_id_loyalty_transactions"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retired_cards")),
        sa.UniqueConstraint("card_number", name=op.f("uq_retired_cards_card_number")),
        sa.UniqueConstraint("apple_serial", name=op.f("uq_retired_cards_apple_serial")),
    )
    op.create_index(op.f("ix_retired_cards_card_id"), "retired_cards", ["card_id"], unique=False)
    op.create_index(op.f("ix_retired_cards_successor_card_id"), "retired_cards", ["successor_card_id"], unique=False)

    op.create_table(
        "loyalty_transaction_notes",
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["transaction_id"], ["loyalty_transactions.id"],
                                name=op.f("fk_loyalty_transaction_notes_transaction_id_loyalty_transactions"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"],
                                name=op.f("fk_loyalty_transaction_notes_card_id_loyalty_cards"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_loyalty_transaction_notes")),
    )
    op.create_index(op.f("ix_loyalty_transaction_notes_card_id"), "loyalty_transaction_notes", ["card_id"],
                    unique=False)

    op.add_column("idempotency_keys", sa.Column("card_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_idempotency_keys_card_id"), "idempotency_keys", ["card_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_idempotency_keys_card_id"), table_name="idempotency_keys")
    op.drop_column("idempotency_keys", "card_id")
    op.drop_index(op.f("ix_loyalty_transaction_notes_card_id"), table_name="loyalty_transaction_notes")
    op.drop_table("loyalty_transaction_notes")
    op.drop_index(op.f("ix_retired_cards_successor_card_id"), table_name="retired_cards")
    op.drop_index(op.f("ix_retired_cards_card_id"), table_name="retired_cards")
    op.drop_table("retired_cards")

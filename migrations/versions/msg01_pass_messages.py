"""Messages to pass holders and automatic nudges (issue 16)

* ``pass_messages``: a message of a program (texts per language, segment, schedule, status); nudges are rows too.
* ``pass_message_deliveries``: the message for one card, written for the whole segment by one INSERT … SELECT;
  the wallet worker marks it sent and records whether Google notified.
* ``pass_message_opt_outs``: cards whose holder turned messages off.
* ``loyalty_programs.nudges``: the program's automatic messages (JSON), read with the program on the stamp path.

Revision ID: msg01
Revises: staff01
"""
from alembic import op
import sqlalchemy as sa

revision = "msg01"
down_revision = "staff01"
branch_labels = None
depends_on = None

DT = sa.DateTime(timezone=True)


def upgrade():
    op.add_column("loyalty_programs", sa.Column("nudges", sa.JSON(), nullable=True))
    op.create_table(
        "pass_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("fallback_locale", sa.String(length=8), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("segment_days", sa.Integer(), nullable=True),
        sa.Column("segment_card_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", DT, nullable=True),
        sa.Column("sent_at", DT, nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", DT, nullable=False),
        sa.CheckConstraint("kind IN ('message', 'nudge_one_to_go', 'nudge_reward_ready', 'nudge_miss_you')",
                           name=op.f("ck_pass_messages_kind")),
        sa.CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'nudge')", name=op.f("ck_pass_messages_status")),
        sa.CheckConstraint("segment IN ('all', 'near_reward', 'inactive', 'card', 'nudge')",
                           name=op.f("ck_pass_messages_segment")),
        sa.ForeignKeyConstraint(["program_id"], ["loyalty_programs.id"],
                                name=op.f("fk_pass_messages_program_id_loyalty_programs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["segment_card_id"], ["loyalty_cards.id"],
                                name=op.f("fk_pass_messages_segment_card_id_loyalty_cards"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pass_messages")),
    )
    op.create_index("ix_pass_messages_program_created", "pass_messages", ["program_id", "created_at"])
    op.create_index("ix_pass_messages_due", "pass_messages", ["scheduled_at"],
                    postgresql_where=sa.text("status = 'scheduled'"), sqlite_where=sa.text("status = 'scheduled'"))
    op.create_table(
        "pass_message_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("google_mode", sa.String(length=8), nullable=True),
        sa.Column("apple_pushes", sa.Integer(), nullable=False),
        sa.Column("created_at", DT, nullable=False),
        sa.Column("sent_at", DT, nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sent')", name=op.f("ck_pass_message_deliveries_status")),
        sa.CheckConstraint("google_mode IS NULL OR google_mode IN ('notify', 'silent')",
                           name=op.f("ck_pass_message_deliveries_google_mode")),
        sa.ForeignKeyConstraint(["message_id"], ["pass_messages.id"],
                                name=op.f("fk_pass_message_deliveries_message_id_pass_messages"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"],
                                name=op.f("fk_pass_message_deliveries_card_id_loyalty_cards"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pass_message_deliveries")),
    )
    op.create_index("ix_pass_message_deliveries_message_status", "pass_message_deliveries", ["message_id", "status"])
    op.create_index("ix_pass_message_deliveries_card_id", "pass_message_deliveries", ["card_id", "id"])
    op.create_index("ix_pass_message_deliveries_card_pending", "pass_message_deliveries", ["card_id"],
                    postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_table(
        "pass_message_opt_outs",
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("created_at", DT, nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"],
                                name=op.f("fk_pass_message_opt_outs_card_id_loyalty_cards"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_pass_message_opt_outs")),
    )


def downgrade():
    op.drop_table("pass_message_opt_outs")
    op.drop_index("ix_pass_message_deliveries_card_pending", table_name="pass_message_deliveries")
    op.drop_index("ix_pass_message_deliveries_card_id", table_name="pass_message_deliveries")
    op.drop_index("ix_pass_message_deliveries_message_status", table_name="pass_message_deliveries")
    op.drop_table("pass_message_deliveries")
    op.drop_index("ix_pass_messages_due", table_name="pass_messages")
    op.drop_index("ix_pass_messages_program_created", table_name="pass_messages")
    op.drop_table("pass_messages")
    op.drop_column("loyalty_programs", "nudges")  # plain DROP COLUMN (SQLite ≥ 3.35): no table copy, triggers kept

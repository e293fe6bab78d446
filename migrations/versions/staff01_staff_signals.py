"""Staff integrity: opening hours per shop, reviews of staff signals, weekly digests; one staff member's ledger rows
indexed

* ``shop_opening_hours``: per shop and weekday, opening and closing minute (local time); none = no hours set.
* ``staff_signal_reviews``: an owner marked a signal reviewed (note, who, when): the audit.
* ``staff_digests``: one weekly digest per shop, owner and week (the ``loyalty staff-digest`` idempotency), with
  its mail outbox row and figures.
* ``ix_loyalty_transactions_program_staff_created``: the Staff view reads one person's rows of a week by index
  (on PostgreSQL with the columns it reads: index-only scans).

Revision ID: staff01
Revises: undo01
"""
import sqlalchemy as sa
from alembic import op

revision = "staff01"
down_revision = "undo01"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "shop_opening_hours",
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("opens_minute", sa.Integer(), nullable=False),
        sa.Column("closes_minute", sa.Integer(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_shop_opening_hours_weekday")),
        sa.CheckConstraint("opens_minute >= 0 AND opens_minute < closes_minute AND closes_minute <= 1440",
                           name=op.f("ck_shop_opening_hours_minutes")),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"], name=op.f("fk_shop_opening_hours_vendor_id_vendors"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("vendor_id", "weekday", name=op.f("pk_shop_opening_hours")),
    )
    op.create_table(
        "staff_signal_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("signal_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("staff_name", sa.String(length=120), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=254), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"], name=op.f("fk_staff_signal_reviews_vendor_id_vendors"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_staff_signal_reviews_user_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"],
                                name=op.f("fk_staff_signal_reviews_api_key_id_api_keys"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_signal_reviews")),
        sa.UniqueConstraint("vendor_id", "signal_key", name="uq_staff_signal_reviews_vendor_key"),
    )
    op.create_table(
        "staff_digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("mail_outbox_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"], name=op.f("fk_staff_digests_vendor_id_vendors"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_staff_digests_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["mail_outbox_id"], ["mail_outbox.id"],
                                name=op.f("fk_staff_digests_mail_outbox_id_mail_outbox"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_digests")),
        sa.UniqueConstraint("vendor_id", "user_id", "week_start", name="uq_staff_digests_week"),
    )
    op.create_index(op.f("ix_staff_digests_mail_outbox_id"), "staff_digests", ["mail_outbox_id"], unique=False)
    op.create_index("ix_loyalty_transactions_program_staff_created", "loyalty_transactions",
                    ["program_id", "staff_name", "created_at"], unique=False,
                    postgresql_include=["type", "card_id", "delta", "user_id", "api_key_id", "staff_pin_id", "id"])


def downgrade():
    op.drop_index("ix_loyalty_transactions_program_staff_created", table_name="loyalty_transactions")
    op.drop_index(op.f("ix_staff_digests_mail_outbox_id"), table_name="staff_digests")
    op.drop_table("staff_digests")
    op.drop_table("staff_signal_reviews")
    op.drop_table("shop_opening_hours")

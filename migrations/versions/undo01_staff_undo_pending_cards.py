"""Pending poster sign-ups: a program's switch and the card's confirmation at the till

``loyalty_programs.pending_signups`` (off by default): cards made from the poster (self-enrolment) start
pending. ``loyalty_cards.pending`` and who confirmed the card and when (``confirmed_at``, ``confirmed_by_pin_id``,
``confirmed_by_user_id``, ``confirmed_by_name``): the first stamp or points, given with a staff PIN, confirms it.
The two ids are plain integers (no foreign key): SQLite cannot add a constrained column without rebuilding the
table, staff PIN rows are never deleted (only retired) and the name is kept beside them for the audit.

Staff undo needs no schema: an undo is a ``void`` row (``note`` = "undone_by_staff").

Revision ID: undo01
Revises: health01
"""
from alembic import op
import sqlalchemy as sa

revision = "undo01"
down_revision = "health01"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("loyalty_programs", sa.Column("pending_signups", sa.Boolean(), nullable=False,
                                                server_default=sa.false()))
    op.add_column("loyalty_cards", sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("loyalty_cards", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("loyalty_cards", sa.Column("confirmed_by_pin_id", sa.Integer(), nullable=True))
    op.add_column("loyalty_cards", sa.Column("confirmed_by_user_id", sa.Integer(), nullable=True))
    op.add_column("loyalty_cards", sa.Column("confirmed_by_name", sa.String(length=120), nullable=True))


def downgrade():
    for column in ("confirmed_by_name", "confirmed_by_user_id", "confirmed_by_pin_id", "confirmed_at", "pending"):
        op.drop_column("loyalty_cards", column)
    op.drop_column("loyalty_programs", "pending_signups")

"""Sessions that can be ended: a per-user session version

A login's session cookie carries ``"<user id>:<session_version>"`` (Flask-Login's user id, ``User.get_id``). Logging
out, changing the password, being disabled and an owner's "log out everywhere" raise the number, after which a
cookie with the old one — a copy included — no longer loads the user. Existing rows start at 0; cookies issued
before this revision (a bare user id) are refused once, so everyone logs in again after the upgrade.

Revision ID: sec02_sessions
Revises: perf06
"""
from alembic import op
import sqlalchemy as sa

revision = "sec02_sessions"
down_revision = "perf06"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")

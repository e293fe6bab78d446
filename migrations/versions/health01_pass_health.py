"""Pass health, Google callback nonces, program relevance (issue 16, items 3-5)

* ``wallet_pass_health``: per card, what its passes did (Apple registrations seen, last fetch, last push result,
  dead push tokens pruned; Google saved/deleted from the signed callbacks).
* ``google_callback_nonces``: the nonce of every accepted Google callback (unique), so a repeat is dropped.
* ``program_locations``: up to 10 shop locations per program (pass.json ``locations``, Google
  ``merchantLocations``).
* ``loyalty_programs.relevant_from`` / ``relevant_until``: a time-boxed offer (pass.json ``relevantDates``).

Revision ID: health01
Revises: seam01
"""
import sqlalchemy as sa
from alembic import op

revision = "health01"
down_revision = "seam01"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "wallet_pass_health",
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("apple_first_registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("apple_unregistered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("apple_unregistrations", sa.Integer(), nullable=False),
        sa.Column("apple_last_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("apple_last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("apple_last_push_result", sa.String(length=200), nullable=True),
        sa.Column("apple_tokens_pruned", sa.Integer(), nullable=False),
        sa.Column("google_state", sa.String(length=8), nullable=True),
        sa.Column("google_state_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("google_saves", sa.Integer(), nullable=False),
        sa.Column("google_deletes", sa.Integer(), nullable=False),
        sa.CheckConstraint("google_state IS NULL OR google_state IN ('saved', 'deleted')",
                           name=op.f("ck_wallet_pass_health_google_state")),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"],
                                name=op.f("fk_wallet_pass_health_card_id_loyalty_cards"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_wallet_pass_health")),
    )
    op.create_table(
        "google_callback_nonces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_callback_nonces")),
        sa.UniqueConstraint("nonce", name=op.f("uq_google_callback_nonces_nonce")),
    )
    op.create_index(op.f("ix_google_callback_nonces_received_at"), "google_callback_nonces", ["received_at"],
                    unique=False)
    op.create_table(
        "program_locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("relevant_text", sa.String(length=120), nullable=False),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_program_locations_latitude")),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name=op.f("ck_program_locations_longitude")),
        sa.CheckConstraint("position BETWEEN 0 AND 9", name=op.f("ck_program_locations_position")),
        sa.ForeignKeyConstraint(["program_id"], ["loyalty_programs.id"],
                                name=op.f("fk_program_locations_program_id_loyalty_programs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_locations")),
        sa.UniqueConstraint("program_id", "position", name="uq_program_locations_program_position"),
    )
    # Plain ALTER TABLE … ADD COLUMN (no batch copy: the table's slug triggers stay as they are).
    op.add_column("loyalty_programs", sa.Column("relevant_from", sa.DateTime(timezone=True), nullable=True))
    op.add_column("loyalty_programs", sa.Column("relevant_until", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("loyalty_programs", "relevant_until")
    op.drop_column("loyalty_programs", "relevant_from")
    op.drop_table("program_locations")
    op.drop_index(op.f("ix_google_callback_nonces_received_at"), table_name="google_callback_nonces")
    op.drop_table("google_callback_nonces")
    op.drop_table("wallet_pass_health")

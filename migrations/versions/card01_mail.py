"""Sign-in links, the mail outbox and single-use enrolment forms

* ``sign_in_links``: one-time links to a card (emailed, or shown as a QR at the till); only the SHA-256 of the
  token is stored.
* ``mail_outbox``: emails written in the request's transaction and delivered by ``loyalty mail-worker``.
* ``enrol_form_nonces``: the nonce of every accepted enrolment form, so the form cannot be posted twice.

Revision ID: card01_mail
Revises: sec02_sessions
"""
import sqlalchemy as sa
from alembic import op


revision = "card01_mail"
down_revision = "sec02_sessions"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("staff_pin_id", sa.Integer(), nullable=True),
        sa.Column("staff_name", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"], name=op.f("fk_sign_in_links_card_id_loyalty_cards"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sign_in_links_user_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["staff_pin_id"], ["staff_pins.id"],
                                name=op.f("fk_sign_in_links_staff_pin_id_staff_pins"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sign_in_links_token_hash")),
    )
    op.create_index(op.f("ix_sign_in_links_card_id"), "sign_in_links", ["card_id"], unique=False)

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["card_id"], ["loyalty_cards.id"], name=op.f("fk_mail_outbox_card_id_loyalty_cards"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_mail_outbox_message_id")),
    )
    op.create_index(op.f("ix_mail_outbox_card_id"), "mail_outbox", ["card_id"], unique=False)
    op.create_index("ix_mail_outbox_pending", "mail_outbox", ["delivered_at", "available_at"], unique=False)

    op.create_table(
        "enrol_form_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_enrol_form_nonces")),
    )
    op.create_index(op.f("ix_enrol_form_nonces_expires_at"), "enrol_form_nonces", ["expires_at"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_enrol_form_nonces_expires_at"), table_name="enrol_form_nonces")
    op.drop_table("enrol_form_nonces")
    op.drop_index("ix_mail_outbox_pending", table_name="mail_outbox")
    op.drop_index(op.f("ix_mail_outbox_card_id"), table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.drop_index(op.f("ix_sign_in_links_card_id"), table_name="sign_in_links")
    op.drop_table("sign_in_links")

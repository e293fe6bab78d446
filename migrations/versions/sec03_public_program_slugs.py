"""Every slug a program ever had, reserved for it across the platform; the wallet outbox's waiting rows indexed

A program's slug is printed on its posters (``/p/<slug>``). Renaming it must not free the old slug for another
shop, whose program would then enrol the first shop's customers. ``loyalty_program_slugs`` holds every slug every
program has had, its primary key making each one the platform's only; the current slug is one of them. A trigger
on ``loyalty_programs`` (INSERT, UPDATE OF slug) records the slug in the same statement, whatever path makes the
change (pages, API, CLI, hand-written SQL); a slug owned by another program makes that statement fail. The
existing programs' slugs are copied in here. Old slugs resolve to their program (``programs.get_program_by_slug``).

Two partial indexes on the wallet outbox's waiting rows (``delivered_at IS NULL``): a design change queues a row
for every card of a program (10 000 at once), and the worker's claim must stay cheap with such a backlog and with
years of delivered rows: ``(available_at, id)`` for its ordered walk, ``(card_id)`` for "has this card a row
waiting or in flight" (the claim, and the design change's coalescing). Measured on PostgreSQL with 7 800 waiting
and 52 000 delivered rows: the claim went from 15 s to 36 ms.

Revision ID: sec03_public
Revises: card02_replace
"""
from alembic import op
import sqlalchemy as sa

revision = "sec03_public"
down_revision = "card02_replace"
branch_labels = None
depends_on = None

# Record NEW.slug for NEW.id unless it is already that program's; another program's slug violates the key.
RECORD = ("INSERT INTO loyalty_program_slugs (slug, program_id) SELECT NEW.slug, NEW.id WHERE NOT EXISTS "
          "(SELECT 1 FROM loyalty_program_slugs WHERE slug = NEW.slug AND program_id = NEW.id)")


def upgrade():
    op.create_table("loyalty_program_slugs",
                    sa.Column("slug", sa.String(length=80), nullable=False),
                    sa.Column("program_id", sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(["program_id"], ["loyalty_programs.id"],
                                            name=op.f("fk_loyalty_program_slugs_program_id_loyalty_programs"),
                                            ondelete="CASCADE"),
                    sa.PrimaryKeyConstraint("slug", name=op.f("pk_loyalty_program_slugs")))
    with op.batch_alter_table("loyalty_program_slugs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loyalty_program_slugs_program_id"), ["program_id"], unique=False)
    op.execute("INSERT INTO loyalty_program_slugs (slug, program_id) SELECT slug, id FROM loyalty_programs")
    waiting = sa.text("delivered_at IS NULL")
    op.create_index("ix_wallet_outbox_due", "wallet_outbox", ["available_at", "id"], postgresql_where=waiting,
                    sqlite_where=waiting)
    op.create_index("ix_wallet_outbox_card_waiting", "wallet_outbox", ["card_id"], postgresql_where=waiting,
                    sqlite_where=waiting)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION portal_program_slug_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                {RECORD};
                RETURN NULL;
            END
            $$""")
        op.execute("CREATE TRIGGER loyalty_programs_slug_kept AFTER INSERT OR UPDATE OF slug ON loyalty_programs "
                   "FOR EACH ROW EXECUTE FUNCTION portal_program_slug_kept()")
    else:
        op.execute(f"CREATE TRIGGER loyalty_programs_slug_kept_insert AFTER INSERT ON loyalty_programs "
                   f"BEGIN {RECORD}; END")
        op.execute(f"CREATE TRIGGER loyalty_programs_slug_kept_update AFTER UPDATE OF slug ON loyalty_programs "
                   f"BEGIN {RECORD}; END")


def downgrade():
    op.drop_index("ix_wallet_outbox_card_waiting", table_name="wallet_outbox")
    op.drop_index("ix_wallet_outbox_due", table_name="wallet_outbox")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER loyalty_programs_slug_kept ON loyalty_programs")
        op.execute("DROP FUNCTION portal_program_slug_kept()")
    else:
        op.execute("DROP TRIGGER loyalty_programs_slug_kept_insert")
        op.execute("DROP TRIGGER loyalty_programs_slug_kept_update")
    with op.batch_alter_table("loyalty_program_slugs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loyalty_program_slugs_program_id"))
    op.drop_table("loyalty_program_slugs")

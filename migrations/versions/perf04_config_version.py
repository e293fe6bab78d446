"""A version number of the shops' configuration, raised by every change of a program or a vendor

``config_version`` holds one row. Triggers on ``loyalty_programs`` and ``vendors`` (INSERT, UPDATE, DELETE) raise
its number in the transaction that makes the change, whatever path makes it (pages, API, CLI, hand-written SQL).
The card lock of every stamp reads the number with the card, and an app process uses its copy of the card's
program and vendor only while the number is the one it read with that copy (``portal/services/program_cache.py``).

Revision ID: perf04
Revises: perf03
"""
from alembic import op
import sqlalchemy as sa

revision = "perf04"
down_revision = "perf03"
branch_labels = None
depends_on = None

TABLES = ("loyalty_programs", "vendors")


def upgrade():
    op.create_table("config_version",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("version", sa.BigInteger(), nullable=False),
                    sa.CheckConstraint("id = 1", name=op.f("ck_config_version_one_row")),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_config_version")))
    # A random start: two databases (the tests' throwaway ones, a copy) are unlikely to share version numbers.
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("INSERT INTO config_version (id, version) VALUES (1, "
               + ("floor(random() * 1e15)::bigint)" if postgres else "abs(random() % 1000000000000000))"))
    if postgres:
        op.execute("""
            CREATE FUNCTION portal_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE config_version SET version = version + 1 WHERE id = 1;
                RETURN NULL;
            END
            $$""")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_config_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION portal_config_changed()")
    else:  # SQLite has row triggers only, one per event
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"CREATE TRIGGER {table}_config_changed_{event} AFTER {event.upper()} ON {table} "
                           "BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_config_changed ON {table}")
        op.execute("DROP FUNCTION portal_config_changed()")
    else:
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_config_changed_{event}")
    op.drop_table("config_version")

"""Drop the configuration's version and the API-key notifications: nothing caches programs or keys any more

The per-process copies of programs and API keys are gone (the card's program is read with the card; the API key
is looked up on every request), so what kept them honest goes too: the ``config_version`` table and its triggers
on ``loyalty_programs``, ``vendors`` and ``api_keys`` (``perf04``, ``perf06``) and, on PostgreSQL, the
``NOTIFY portal_api_keys`` triggers (``perf02``).

Revision ID: seam01
Revises: sec03_public
"""
from alembic import op
import sqlalchemy as sa

revision = "seam01"
down_revision = "sec03_public"
branch_labels = None
depends_on = None

VERSIONED = ("loyalty_programs", "vendors", "api_keys")
EVENTS = ("insert", "update", "delete")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in VERSIONED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_config_changed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS portal_config_changed()")
        op.execute("DROP TRIGGER IF EXISTS vendors_access_changed ON vendors")
        op.execute("DROP TRIGGER IF EXISTS api_keys_changed ON api_keys")
        op.execute("DROP FUNCTION IF EXISTS portal_api_keys_changed()")
    else:
        for table in VERSIONED:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_config_changed_{event}")
    op.drop_table("config_version")


def downgrade():
    op.create_table("config_version",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("version", sa.BigInteger(), nullable=False),
                    sa.CheckConstraint("id = 1", name=op.f("ck_config_version_one_row")),
                    sa.PrimaryKeyConstraint("id", name=op.f("pk_config_version")))
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
        for table in VERSIONED:
            op.execute(f"CREATE TRIGGER {table}_config_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION portal_config_changed()")
        op.execute("""
            CREATE FUNCTION portal_api_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('portal_api_keys', TG_TABLE_NAME);
                RETURN NULL;
            END
            $$""")
        op.execute("CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys "
                   "FOR EACH STATEMENT EXECUTE FUNCTION portal_api_keys_changed()")
        op.execute("CREATE TRIGGER vendors_access_changed AFTER UPDATE OF active, locale OR DELETE ON vendors "
                   "FOR EACH STATEMENT EXECUTE FUNCTION portal_api_keys_changed()")
    else:
        for table in VERSIONED:
            for event in EVENTS:
                op.execute(f"CREATE TRIGGER {table}_config_changed_{event} AFTER {event.upper()} ON {table} "
                           "BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END")

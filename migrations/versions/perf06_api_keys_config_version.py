"""API keys raise the configuration's version too

The triggers of ``perf04`` raise ``config_version`` with every change of a program or a vendor. This revision adds
the same triggers on ``api_keys`` (INSERT, UPDATE, DELETE), so the number also moves whenever what a key may do
changes: revoked, deleted, its scope or vendor changed — by any path, hand-written SQL included.

On SQLite an app process keeps the keys it has resolved with the number read with them, and uses such a key only
after the request's own transaction has read the same number (``portal/services/api_key_cache.py``). On
PostgreSQL keys are announced by ``NOTIFY`` (``perf02``); the number moving with them there too keeps one schema.

Revision ID: perf06
Revises: perf05
"""
from alembic import op

revision = "perf06"
down_revision = "perf05"
branch_labels = None
depends_on = None

EVENTS = ("insert", "update", "delete")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER api_keys_config_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys "
                   "FOR EACH STATEMENT EXECUTE FUNCTION portal_config_changed()")
    else:  # SQLite has row triggers only, one per event
        for event in EVENTS:
            op.execute(f"CREATE TRIGGER api_keys_config_changed_{event} AFTER {event.upper()} ON api_keys "
                       "BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER api_keys_config_changed ON api_keys")
    else:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER api_keys_config_changed_{event}")

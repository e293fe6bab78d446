"""The head of each card's hash chain kept on the card; API-key changes announced (PostgreSQL)

* ``loyalty_cards.chain_head`` holds the hash of the card's newest ledger row, written in the same statement as
  the balance. An append links to it directly instead of looking up the previous row (one query less on every
  stamp, redemption and correction). ``loyalty verify-ledger`` checks it against the ledger. Existing cards are
  filled in from their ledger by the upgrade.
* PostgreSQL: statement triggers on ``api_keys`` (UPDATE, DELETE) and on ``vendors`` (UPDATE OF active, locale;
  DELETE) send ``NOTIFY portal_api_keys``, delivered when the change commits: every app process empties its
  cache of resolved API keys (``portal/services/api_key_cache.py``), whatever path made the change.

Revision ID: perf02
Revises: perf01
"""
from alembic import op
import sqlalchemy as sa

revision = "perf02"
down_revision = "perf01"
branch_labels = None
depends_on = None

# Plain ADD/DROP COLUMN on both databases (SQLite >= 3.35 has both): a batch "move and copy" of loyalty_cards
# would drop the table's triggers (the enrolment rollup of perf01).


def upgrade():
    op.add_column("loyalty_cards", sa.Column("chain_head", sa.String(length=64), nullable=True))
    op.execute("UPDATE loyalty_cards SET chain_head = (SELECT t.hash FROM loyalty_transactions t "
               "WHERE t.card_id = loyalty_cards.id ORDER BY t.id DESC LIMIT 1)")
    if op.get_bind().dialect.name == "postgresql":
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


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER vendors_access_changed ON vendors")
        op.execute("DROP TRIGGER api_keys_changed ON api_keys")
        op.execute("DROP FUNCTION portal_api_keys_changed()")
    op.execute("ALTER TABLE loyalty_cards DROP COLUMN chain_head")

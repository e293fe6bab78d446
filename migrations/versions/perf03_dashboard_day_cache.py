"""Dashboard day cache: sums over closed local days, dropped by triggers when the ledger or the cards change there

* ``loyalty_day_rollup``: per program and closed UTC range ``[day_start, day_end)`` — the local-midnight bounds of
  one local day in whatever time zone asked for it — the stamps given, points earned, redemptions and enrolments
  of that range. ``loyalty_staff_day_rollup``: the staff actions of the same range per staff name; its foreign key
  to the day row (``ON DELETE CASCADE``) makes the day row the marker "this range is cached", also for a day
  without staff actions. ``portal/services/stats.py`` fills missing closed days from the 15-minute rollups of
  ``perf01`` and reads them back, so a 365-day dashboard sums ≈ 365 rows per program instead of ≈ 140 000.
* Exact by construction: a row inserted into or deleted from ``loyalty_transactions`` or ``loyalty_cards`` (or a
  card whose program or creation time changes) deletes the cached ranges of its program that contain its
  ``created_at``. Cached ranges end in the past, so for an ordinary stamp (``created_at`` = now) this is an empty
  probe of the ``(program_id, day_end)`` index.

The cache starts empty (it fills itself on the first dashboard request); the downgrade drops it.

Revision ID: perf03
Revises: perf02
"""
from alembic import op
import sqlalchemy as sa

revision = "perf03"
down_revision = "perf02"
branch_labels = None
depends_on = None

DAY_KEY = ("program_id", "day_start", "day_end")
# The triggers' probe: cached ranges of a program ending after a timestamp (none in normal operation).
DAY_END_INDEX = "ix_loyalty_day_rollup_program_day_end"
# (trigger name suffix, table, SQLite event, the row(s) whose created_at it invalidates)
SQLITE_TRIGGERS = (
    ("tx_ins", "loyalty_transactions", "INSERT", ("NEW",)),
    ("tx_del", "loyalty_transactions", "DELETE", ("OLD",)),
    ("card_ins", "loyalty_cards", "INSERT", ("NEW",)),
    ("card_del", "loyalty_cards", "DELETE", ("OLD",)),
    ("card_upd", "loyalty_cards", "UPDATE OF program_id, created_at", ("OLD", "NEW")),
)


def _invalidate(row: str) -> str:
    """Drop the cached ranges of ``row``'s program that contain ``row.created_at``."""
    return (f"DELETE FROM loyalty_day_rollup WHERE program_id = {row}.program_id "
            f"AND day_end > {row}.created_at AND day_start <= {row}.created_at;")


def upgrade():
    op.create_table(
        "loyalty_day_rollup",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("day_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stamps", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("redemptions", sa.BigInteger(), nullable=False),
        sa.Column("enrolments", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["loyalty_programs.id"],
                                name=op.f("fk_loyalty_day_rollup_program_id_loyalty_programs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(*DAY_KEY, name=op.f("pk_loyalty_day_rollup")),
    )
    op.create_index(DAY_END_INDEX, "loyalty_day_rollup", ["program_id", "day_end"])
    op.create_table(
        "loyalty_staff_day_rollup",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("day_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("staff_name", sa.String(length=120), nullable=False),
        sa.Column("actions", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(list(DAY_KEY), [f"loyalty_day_rollup.{c}" for c in DAY_KEY],
                                name=op.f("fk_loyalty_staff_day_rollup_program_id_loyalty_day_rollup"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(*DAY_KEY, "staff_name", name=op.f("pk_loyalty_staff_day_rollup")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION loyalty_day_rollup_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('DELETE', 'UPDATE') THEN {_invalidate('OLD')}
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN {_invalidate('NEW')}
                END IF;
                RETURN NULL;
            END
            $$""")
        op.execute("CREATE TRIGGER loyalty_day_rollup_tx AFTER INSERT OR DELETE ON loyalty_transactions "
                   "FOR EACH ROW EXECUTE FUNCTION loyalty_day_rollup_invalidate()")
        op.execute("CREATE TRIGGER loyalty_day_rollup_cards AFTER INSERT OR DELETE OR UPDATE OF program_id, "
                   "created_at ON loyalty_cards FOR EACH ROW EXECUTE FUNCTION loyalty_day_rollup_invalidate()")
    else:
        for suffix, table, event, rows in SQLITE_TRIGGERS:
            body = " ".join(_invalidate(row) for row in rows)
            op.execute(f"CREATE TRIGGER loyalty_day_rollup_{suffix} AFTER {event} ON {table} BEGIN {body} END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER loyalty_day_rollup_cards ON loyalty_cards")
        op.execute("DROP TRIGGER loyalty_day_rollup_tx ON loyalty_transactions")
        op.execute("DROP FUNCTION loyalty_day_rollup_invalidate()")
    else:
        for suffix, *_ in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER loyalty_day_rollup_{suffix}")
    op.drop_table("loyalty_staff_day_rollup")
    op.drop_index(DAY_END_INDEX, table_name="loyalty_day_rollup")
    op.drop_table("loyalty_day_rollup")

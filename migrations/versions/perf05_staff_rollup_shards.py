"""The staff rollup sharded like the transaction rollup: no hot row per staff member and hour

``loyalty_staff_rollup`` had one row per program, hour and staff name. Every stamp given under one name — all the
stamps of an API key, of a shared tablet login — upserted that same row, and an upsert holds the row's lock until
its transaction commits: concurrent stamps of one shop queued behind each other's commits (pgbench, the stamp's
write statement alone, 4 clients: 1 600–1 970 transactions/s with the hot row, 2 710–2 880 sharded). The row is
now per program, hour, staff name and shard (card id % 4, as ``loyalty_tx_rollup``); readers already sum per
staff name. Existing rows become shard 0.

Revision ID: perf05
Revises: perf04
"""
from alembic import op
import sqlalchemy as sa

revision = "perf05"
down_revision = "perf04"
branch_labels = None
depends_on = None

SHARDS = 4
ACTION_TYPES = "('stamp_add', 'points_earn', 'stamp_redeem', 'points_redeem')"
PG_BUCKET = "date_bin('15 minutes', {col}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
PG_HOUR = "date_bin('1 hour', {col}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
KEY = ("program_id", "bucket", "staff_name")


def _exec(sql: str) -> None:
    """Raw SQL as written (no bind-parameter parsing: the text has ':00' and '%02d' in it)."""
    op.get_bind().exec_driver_sql(sql)


def _staff_target(sharded: bool) -> tuple[str, str, str]:
    """(extra column, extra value for ``row``, conflict target) of the staff upsert."""
    return ((", shard", ", {shard}", "program_id, bucket, staff_name, shard") if sharded
            else ("", "", "program_id, bucket, staff_name"))


def _pg_upsert(row: str, sign: str, sharded: bool) -> str:
    column, value, target = _staff_target(sharded)
    value = value.format(shard=f"mod({row}.card_id, {SHARDS})::smallint")
    return f"""
        INSERT INTO loyalty_tx_rollup AS t (program_id, bucket, shard, stamps, points, redemptions)
        VALUES ({row}.program_id, {PG_BUCKET.format(col=row + '.created_at')}, mod({row}.card_id, {SHARDS})::smallint,
                {sign} * CASE WHEN {row}.type = 'stamp_add' THEN {row}.delta ELSE 0 END,
                {sign} * CASE WHEN {row}.type = 'points_earn' THEN {row}.delta ELSE 0 END,
                {sign} * CASE WHEN {row}.type IN ('stamp_redeem', 'points_redeem') THEN 1 ELSE 0 END)
        ON CONFLICT (program_id, bucket, shard) DO UPDATE SET
            stamps = t.stamps + EXCLUDED.stamps, points = t.points + EXCLUDED.points,
            redemptions = t.redemptions + EXCLUDED.redemptions;
        IF {row}.staff_name IS NOT NULL AND {row}.type IN {ACTION_TYPES} THEN
            INSERT INTO loyalty_staff_rollup AS t (program_id, bucket, staff_name{column}, actions)
            VALUES ({row}.program_id, {PG_HOUR.format(col=row + '.created_at')}, {row}.staff_name{value}, {sign})
            ON CONFLICT ({target}) DO UPDATE SET actions = t.actions + EXCLUDED.actions;
        END IF;"""


def _pg_function(sharded: bool) -> None:
    _exec(f"""
        CREATE OR REPLACE FUNCTION loyalty_tx_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN {_pg_upsert('NEW', '1', sharded)}
            ELSE {_pg_upsert('OLD', '-1', sharded)}
            END IF;
            RETURN NULL;
        END
        $$""")


def _sqlite_bucket(col: str) -> str:
    return (f"substr({col}, 1, 14) || printf('%02d', (CAST(substr({col}, 15, 2) AS INTEGER) / 15) * 15)"
            f" || ':00.000000'")


def _sqlite_upsert(row: str, sign: str, sharded: bool) -> str:
    column, value, target = _staff_target(sharded)
    value = value.format(shard=f"{row}.card_id % {SHARDS}")
    return f"""
        INSERT INTO loyalty_tx_rollup (program_id, bucket, shard, stamps, points, redemptions)
        VALUES ({row}.program_id, {_sqlite_bucket(row + '.created_at')}, {row}.card_id % {SHARDS},
                {sign} * CASE WHEN {row}.type = 'stamp_add' THEN {row}.delta ELSE 0 END,
                {sign} * CASE WHEN {row}.type = 'points_earn' THEN {row}.delta ELSE 0 END,
                {sign} * CASE WHEN {row}.type IN ('stamp_redeem', 'points_redeem') THEN 1 ELSE 0 END)
        ON CONFLICT (program_id, bucket, shard) DO UPDATE SET
            stamps = stamps + excluded.stamps, points = points + excluded.points,
            redemptions = redemptions + excluded.redemptions;
        INSERT INTO loyalty_staff_rollup (program_id, bucket, staff_name{column}, actions)
        SELECT {row}.program_id, substr({row}.created_at, 1, 13) || ':00:00.000000', {row}.staff_name{value}, {sign}
        WHERE {row}.staff_name IS NOT NULL AND {row}.type IN {ACTION_TYPES}
        ON CONFLICT ({target}) DO UPDATE SET actions = actions + excluded.actions;"""


SQLITE_TRIGGERS = (("loyalty_tx_rollup_ins", "INSERT", "NEW", "1"), ("loyalty_tx_rollup_del", "DELETE", "OLD", "-1"))


def _rebuild_staff_rollup(change, sharded: bool) -> None:
    """Apply ``change`` (a batch operation) to the staff rollup and install the triggers that match it. SQLite
    rebuilds the table, which it refuses while triggers name it: they are dropped first and created after."""
    postgres = op.get_bind().dialect.name == "postgresql"
    if not postgres:
        for name, *_ in SQLITE_TRIGGERS:
            _exec(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("loyalty_staff_rollup") as batch:
        change(batch)
    if postgres:
        _pg_function(sharded)
    else:
        for name, event, row, sign in SQLITE_TRIGGERS:
            _exec(f"CREATE TRIGGER {name} AFTER {event} ON loyalty_transactions BEGIN"
                  f"{_sqlite_upsert(row, sign, sharded)} END")


def _add_shard(batch) -> None:
    batch.add_column(sa.Column("shard", sa.SmallInteger(), nullable=False, server_default=sa.text("0")))
    batch.drop_constraint("pk_loyalty_staff_rollup", type_="primary")
    batch.create_primary_key("pk_loyalty_staff_rollup", [*KEY, "shard"])


def _drop_shard(batch) -> None:
    batch.drop_constraint("pk_loyalty_staff_rollup", type_="primary")
    batch.drop_column("shard")
    batch.create_primary_key("pk_loyalty_staff_rollup", list(KEY))


def upgrade():
    _rebuild_staff_rollup(_add_shard, sharded=True)


def downgrade():
    # Fold the shards back into one row per program, hour and staff name, then drop the column.
    _exec("CREATE TABLE staff_rollup_folded AS SELECT program_id, bucket, staff_name, sum(actions) AS actions "
          "FROM loyalty_staff_rollup GROUP BY program_id, bucket, staff_name")
    _exec("DELETE FROM loyalty_staff_rollup")
    _rebuild_staff_rollup(_drop_shard, sharded=False)
    _exec("INSERT INTO loyalty_staff_rollup (program_id, bucket, staff_name, actions) "
          "SELECT program_id, bucket, staff_name, actions FROM staff_rollup_folded")
    _exec("DROP TABLE staff_rollup_folded")

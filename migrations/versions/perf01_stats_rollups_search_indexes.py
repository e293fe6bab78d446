"""Statistics rollups kept by triggers, trigram indexes for the card search (PostgreSQL)

* ``loyalty_tx_rollup``: per program, 15-minute UTC bucket and shard (card id % 4): the sum of stamps given,
  points earned and the number of redemptions. ``loyalty_staff_rollup``: per program, hour (UTC) and staff name:
  the number of staff actions (stamp, earn, redeem). Kept exact by an AFTER INSERT OR DELETE trigger on
  loyalty_transactions (UPDATE is forbidden there), so the owner dashboard sums a few thousand rows instead of
  scanning the ledger. 15-minute buckets: every time zone's midnight falls on one, so the local days of the
  dashboard are exact. The shard spreads concurrent stamps of one program over 4 rows (an upsert's row lock is
  held until commit).
* ``loyalty_card_rollup``: enrolments per program and 15-minute bucket (trigger on loyalty_cards).
* PostgreSQL: ``pg_trgm`` GIN indexes on the searched card columns (name, e-mail, phone, card number), so
  substring and prefix searches use an index (``CREATE EXTENSION pg_trgm``: a trusted extension, the database
  owner may create it). SQLite gets empty placeholder indexes of the same names.

Existing rows are rolled up by the upgrade itself.

Revision ID: perf01
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "perf01"
down_revision = "0001"
branch_labels = None
depends_on = None

SHARDS = 4
TRGM_INDEXES = {
    "ix_loyalty_cards_name_trgm": "customer_name",
    "ix_loyalty_cards_email_trgm": "customer_email",
    "ix_loyalty_cards_phone_trgm": "customer_phone",
    "ix_loyalty_cards_number_trgm": "card_number",
}
EMAIL_PREFIX_INDEX = "ix_loyalty_cards_program_email_prefix"
ACTION_TYPES = "('stamp_add', 'points_earn', 'stamp_redeem', 'points_redeem')"


def _exec(sql: str) -> None:
    """Raw SQL as written (no bind-parameter parsing: the text has ':00' and '%02d' in it)."""
    op.get_bind().exec_driver_sql(sql)


def upgrade():
    op.create_table(
        "loyalty_tx_rollup",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("stamps", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("redemptions", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["loyalty_programs.id"],
                                name=op.f("fk_loyalty_tx_rollup_program_id_loyalty_programs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("program_id", "bucket", "shard", name=op.f("pk_loyalty_tx_rollup")),
    )
    op.create_table(
        "loyalty_staff_rollup",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("staff_name", sa.String(length=120), nullable=False),
        sa.Column("actions", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["loyalty_programs.id"],
                                name=op.f("fk_loyalty_staff_rollup_program_id_loyalty_programs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("program_id", "bucket", "staff_name", name=op.f("pk_loyalty_staff_rollup")),
    )
    op.create_table(
        "loyalty_card_rollup",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enrolments", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["loyalty_programs.id"],
                                name=op.f("fk_loyalty_card_rollup_program_id_loyalty_programs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("program_id", "bucket", name=op.f("pk_loyalty_card_rollup")),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_up()
    else:
        _sqlite_up()


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        _exec("DROP TRIGGER IF EXISTS loyalty_tx_rollup_apply ON loyalty_transactions")
        _exec("DROP TRIGGER IF EXISTS loyalty_card_rollup_apply ON loyalty_cards")
        _exec("DROP FUNCTION IF EXISTS loyalty_tx_rollup_apply()")
        _exec("DROP FUNCTION IF EXISTS loyalty_card_rollup_apply()")
        for name in [*TRGM_INDEXES, EMAIL_PREFIX_INDEX]:
            _exec(f"DROP INDEX IF EXISTS {name}")
    else:
        for name in [*TRGM_INDEXES, EMAIL_PREFIX_INDEX]:
            _exec(f"DROP INDEX IF EXISTS {name}")
        for name in ("loyalty_tx_rollup_ins", "loyalty_tx_rollup_del", "loyalty_card_rollup_ins",
                     "loyalty_card_rollup_del"):
            _exec(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("loyalty_card_rollup")
    op.drop_table("loyalty_staff_rollup")
    op.drop_table("loyalty_tx_rollup")


# --- PostgreSQL ----------------------------------------------------------------------------------------------------

PG_BUCKET = "date_bin('15 minutes', {col}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
PG_HOUR = "date_bin('1 hour', {col}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"


def _pg_tx_upsert(row: str, sign: str) -> str:
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
            INSERT INTO loyalty_staff_rollup AS t (program_id, bucket, staff_name, actions)
            VALUES ({row}.program_id, {PG_HOUR.format(col=row + '.created_at')}, {row}.staff_name, {sign})
            ON CONFLICT (program_id, bucket, staff_name) DO UPDATE SET actions = t.actions + EXCLUDED.actions;
        END IF;"""


def _postgresql_up():
    _exec(f"""
        CREATE FUNCTION loyalty_tx_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN {_pg_tx_upsert('NEW', '1')}
            ELSE {_pg_tx_upsert('OLD', '-1')}
            END IF;
            RETURN NULL;
        END
        $$""")
    _exec("""
        CREATE TRIGGER loyalty_tx_rollup_apply AFTER INSERT OR DELETE ON loyalty_transactions
        FOR EACH ROW EXECUTE FUNCTION loyalty_tx_rollup_apply()""")
    _exec(f"""
        CREATE FUNCTION loyalty_card_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                INSERT INTO loyalty_card_rollup AS t (program_id, bucket, enrolments)
                VALUES (OLD.program_id, {PG_BUCKET.format(col='OLD.created_at')}, -1)
                ON CONFLICT (program_id, bucket) DO UPDATE SET enrolments = t.enrolments + EXCLUDED.enrolments;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO loyalty_card_rollup AS t (program_id, bucket, enrolments)
                VALUES (NEW.program_id, {PG_BUCKET.format(col='NEW.created_at')}, 1)
                ON CONFLICT (program_id, bucket) DO UPDATE SET enrolments = t.enrolments + EXCLUDED.enrolments;
            END IF;
            RETURN NULL;
        END
        $$""")
    _exec("""
        CREATE TRIGGER loyalty_card_rollup_apply AFTER INSERT OR DELETE OR UPDATE OF program_id, created_at
        ON loyalty_cards FOR EACH ROW EXECUTE FUNCTION loyalty_card_rollup_apply()""")
    for sql in pg_backfill():
        _exec(sql)
    _exec("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRGM_INDEXES.items():
        _exec(f"CREATE INDEX {name} ON loyalty_cards USING gin ({column} gin_trgm_ops)")
    # E-mail prefix search per program: a btree usable by LIKE 'prefix%' whatever the database's collation.
    _exec(f"CREATE INDEX {EMAIL_PREFIX_INDEX} ON loyalty_cards (program_id, customer_email text_pattern_ops)")


def pg_backfill() -> list[str]:
    """Roll up what is already there (also used by bench/scale.py after its bulk load)."""
    return [
        f"""INSERT INTO loyalty_tx_rollup (program_id, bucket, shard, stamps, points, redemptions)
        SELECT program_id, {PG_BUCKET.format(col='created_at')}, mod(card_id, {SHARDS})::smallint,
               sum(CASE WHEN type = 'stamp_add' THEN delta ELSE 0 END),
               sum(CASE WHEN type = 'points_earn' THEN delta ELSE 0 END),
               sum(CASE WHEN type IN ('stamp_redeem', 'points_redeem') THEN 1 ELSE 0 END)
        FROM loyalty_transactions GROUP BY 1, 2, 3""",
        f"""INSERT INTO loyalty_staff_rollup (program_id, bucket, staff_name, actions)
        SELECT program_id, {PG_HOUR.format(col='created_at')}, staff_name, count(*)
        FROM loyalty_transactions WHERE staff_name IS NOT NULL AND type IN {ACTION_TYPES} GROUP BY 1, 2, 3""",
        f"""INSERT INTO loyalty_card_rollup (program_id, bucket, enrolments)
        SELECT program_id, {PG_BUCKET.format(col='created_at')}, count(*) FROM loyalty_cards GROUP BY 1, 2""",
    ]


# --- SQLite --------------------------------------------------------------------------------------------------------
# Datetimes are stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): the bucket is that text floored to 15 minutes.

def _sqlite_bucket(col: str) -> str:
    return (f"substr({col}, 1, 14) || printf('%02d', (CAST(substr({col}, 15, 2) AS INTEGER) / 15) * 15)"
            f" || ':00.000000'")


def _sqlite_hour(col: str) -> str:
    return f"substr({col}, 1, 13) || ':00:00.000000'"


def _sqlite_tx_upsert(row: str, sign: str) -> str:
    return f"""
        INSERT INTO loyalty_tx_rollup (program_id, bucket, shard, stamps, points, redemptions)
        VALUES ({row}.program_id, {_sqlite_bucket(row + '.created_at')}, {row}.card_id % {SHARDS},
                {sign} * CASE WHEN {row}.type = 'stamp_add' THEN {row}.delta ELSE 0 END,
                {sign} * CASE WHEN {row}.type = 'points_earn' THEN {row}.delta ELSE 0 END,
                {sign} * CASE WHEN {row}.type IN ('stamp_redeem', 'points_redeem') THEN 1 ELSE 0 END)
        ON CONFLICT (program_id, bucket, shard) DO UPDATE SET
            stamps = stamps + excluded.stamps, points = points + excluded.points,
            redemptions = redemptions + excluded.redemptions;
        INSERT INTO loyalty_staff_rollup (program_id, bucket, staff_name, actions)
        SELECT {row}.program_id, {_sqlite_hour(row + '.created_at')}, {row}.staff_name, {sign}
        WHERE {row}.staff_name IS NOT NULL AND {row}.type IN {ACTION_TYPES}
        ON CONFLICT (program_id, bucket, staff_name) DO UPDATE SET actions = actions + excluded.actions;"""


def _sqlite_card_upsert(row: str, sign: str) -> str:
    return f"""
        INSERT INTO loyalty_card_rollup (program_id, bucket, enrolments)
        VALUES ({row}.program_id, {_sqlite_bucket(row + '.created_at')}, {sign})
        ON CONFLICT (program_id, bucket) DO UPDATE SET enrolments = enrolments + excluded.enrolments;"""


def _sqlite_up():
    # The trigram indexes exist on PostgreSQL only; SQLite gets empty placeholders of the same names (WHERE 0: never
    # written) so the schema matches the models' metadata, which declares them for PostgreSQL.
    for name, column in TRGM_INDEXES.items():
        _exec(f"CREATE INDEX {name} ON loyalty_cards ({column}) WHERE 0")
    _exec(f"CREATE INDEX {EMAIL_PREFIX_INDEX} ON loyalty_cards (program_id, customer_email) WHERE 0")
    _exec(f"CREATE TRIGGER loyalty_tx_rollup_ins AFTER INSERT ON loyalty_transactions BEGIN"
               f"{_sqlite_tx_upsert('NEW', '1')} END")
    _exec(f"CREATE TRIGGER loyalty_tx_rollup_del AFTER DELETE ON loyalty_transactions BEGIN"
               f"{_sqlite_tx_upsert('OLD', '-1')} END")
    _exec(f"CREATE TRIGGER loyalty_card_rollup_ins AFTER INSERT ON loyalty_cards BEGIN"
               f"{_sqlite_card_upsert('NEW', '1')} END")
    _exec(f"CREATE TRIGGER loyalty_card_rollup_del AFTER DELETE ON loyalty_cards BEGIN"
               f"{_sqlite_card_upsert('OLD', '-1')} END")
    _exec(f"""
        INSERT INTO loyalty_tx_rollup (program_id, bucket, shard, stamps, points, redemptions)
        SELECT program_id, {_sqlite_bucket('created_at')}, card_id % {SHARDS},
               sum(CASE WHEN type = 'stamp_add' THEN delta ELSE 0 END),
               sum(CASE WHEN type = 'points_earn' THEN delta ELSE 0 END),
               sum(CASE WHEN type IN ('stamp_redeem', 'points_redeem') THEN 1 ELSE 0 END)
        FROM loyalty_transactions GROUP BY 1, 2, 3""")
    _exec(f"""
        INSERT INTO loyalty_staff_rollup (program_id, bucket, staff_name, actions)
        SELECT program_id, {_sqlite_hour('created_at')}, staff_name, count(*)
        FROM loyalty_transactions WHERE staff_name IS NOT NULL AND type IN {ACTION_TYPES} GROUP BY 1, 2, 3""")
    _exec(f"""
        INSERT INTO loyalty_card_rollup (program_id, bucket, enrolments)
        SELECT program_id, {_sqlite_bucket('created_at')}, count(*) FROM loyalty_cards GROUP BY 1, 2""")

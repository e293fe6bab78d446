"""Queries at scale on PostgreSQL: 1,000,000 cards, 200,000 Apple registrations, 5,000,000 transactions.

    .venv/bin/python bench/scale.py [--reuse] [--keep] [--repeat 30]

Loads a dedicated database ``bench_scale`` (migrated with Alembic, i.e. ``flask db upgrade``) with generate_series
INSERTs: one vendor with a stamp program (700,000 cards) and a points program (300,000 cards), 5,000,000 ledger
rows over 400 days by 10 staff, 200,000 registrations (100,000 devices × 2 passes). The rollup triggers are
switched off during the bulk load and the rollups are rebuilt afterwards with the migration's own SQL; the bench
then checks that the rollups give exactly the live aggregates. ``--reuse`` keeps an already loaded database.

Each query is timed in-process (p50/p95 over ``--repeat`` runs) against a baseline measured in the same run:

* Apple "updated since" (``apple_service.updated_serials``) vs the same SQL with index scans disabled;
* card search (``cards.search_cards``: name, e-mail prefix, phone digits, card number prefix) vs the previous
  implementation (``lower(name) LIKE``, no trigram index usable);
* owner dashboard ``stats.vendor_stats`` (rollups) vs ``stats.vendor_stats_live`` (ledger scan);
* CSV export ``exports.transactions_csv`` / ``cards_csv`` (keyset batches): rows/s and peak memory (tracemalloc).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import PG_ADMIN, make_app, migrate, pg_url, timed  # noqa: E402

DB = "bench_scale"
N_CARDS, N_STAMP_CARDS, N_TX, N_REG, N_DEVICES = 1_000_000, 700_000, 5_000_000, 200_000, 100_000

LOAD_SQL = [
    "ALTER TABLE loyalty_transactions DISABLE TRIGGER loyalty_tx_rollup_apply",
    "ALTER TABLE loyalty_cards DISABLE TRIGGER loyalty_card_rollup_apply",
    """INSERT INTO vendors (id, name, slug, timezone, locale, active, created_at)
       VALUES (1, 'Big Shop', 'big-shop', 'Europe/Luxembourg', 'en', true, now() - interval '500 days')""",
    """INSERT INTO loyalty_programs (id, vendor_id, slug, name, description, type, stamps_required, reward_text,
           points_per_unit, currency, require_pin, cooldown_minutes, daily_stamp_limit, pin_max_attempts,
           pin_lockout_minutes, active, background_color, foreground_color, label_color, updated_at, created_at)
       VALUES (1, 1, 'coffee', 'Coffee card', '', 'stamps', 10, 'Coffee', NULL, 'EUR', false, 0, 0, 5, 15, true,
               '#222222', '#ffffff', '#cccccc', now() - interval '450 days', now() - interval '500 days'),
              (2, 1, 'bakery', 'Bakery points', '', 'points', NULL, '', 1.00, 'EUR', false, 0, 0, 5, 15, true,
               '#222222', '#ffffff', '#cccccc', now() - interval '450 days', now() - interval '500 days')""",
    "SELECT setval(pg_get_serial_sequence('vendors', 'id'), 10)",
    "SELECT setval(pg_get_serial_sequence('loyalty_programs', 'id'), 10)",
    f"""INSERT INTO loyalty_cards (id, program_id, card_number, public_token, customer_name, customer_email,
           customer_phone, locale, stamps, points, lifetime_stamps, lifetime_points, rewards_redeemed, apple_serial,
           apple_auth_token, last_stamp_at, updated_at, created_at)
       SELECT i, CASE WHEN i <= {N_STAMP_CARDS} THEN 1 ELSE 2 END,
              (1000000000 + i::bigint * 7919 % 8999999999)::text,
              md5('t' || i), 
              (ARRAY['Anna','Marc','Lena','Paul','Sofia','Luc','Mia','Tom','Eva','Jan','Nora','Ben'])[1 + i % 12]
                || ' ' || (ARRAY['Muller','Schmit','Weber','Wagner','Hoffmann','Becker','Klein','Meyer','Faber',
                                 'Thill','Kremer','Reuter','Schroeder'])[1 + (i / 12) % 13] || ' ' || (i % 997),
              'customer' || i || '@mail' || (i % 50) || '.example',
              '+3526' || lpad((i * 31 % 99999999)::text, 8, '0'),
              'en', CASE WHEN i <= {N_STAMP_CARDS} THEN i % 10 ELSE 0 END,
              CASE WHEN i > {N_STAMP_CARDS} THEN i % 500 ELSE 0 END, 5, 5, 0, md5('s' || i), md5('a' || i),
              NULL,
              now() - (i % 400) * interval '1 day' + (i % 86400) * interval '1 second',
              now() - interval '420 days' + (i::float / {N_CARDS}) * interval '420 days'
       FROM generate_series(1, {N_CARDS}) AS i""",
    f"SELECT setval(pg_get_serial_sequence('loyalty_cards', 'id'), {N_CARDS} + 10)",
    f"""INSERT INTO loyalty_transactions (card_id, program_id, type, delta, balance_after, staff_name, note,
           created_at, prev_hash, hash)
       SELECT c, CASE WHEN c <= {N_STAMP_CARDS} THEN 1 ELSE 2 END,
              CASE WHEN c <= {N_STAMP_CARDS} THEN (CASE WHEN i % 11 = 0 THEN 'stamp_redeem' ELSE 'stamp_add' END)
                   ELSE (CASE WHEN i % 13 = 0 THEN 'points_redeem' ELSE 'points_earn' END) END,
              CASE WHEN i % 11 = 0 AND c <= {N_STAMP_CARDS} THEN -1 WHEN i % 13 = 0 AND c > {N_STAMP_CARDS} THEN -1
                   ELSE 1 + i % 3 END,
              1 + i % 9,
              CASE WHEN i % 7 = 0 THEN NULL ELSE 'Staff ' || (i % 10) END, '',
              now() - interval '400 days' + (i::float / {N_TX}) * interval '400 days', NULL, md5(i::text)
       FROM (SELECT i, (1 + (i::bigint * 104729) % {N_CARDS})::int AS c FROM generate_series(1, {N_TX}) AS i) s""",
    f"""INSERT INTO apple_device_registrations (device_library_id, push_token, pass_type_id, serial_number,
           created_at)
       SELECT 'device' || (i % {N_DEVICES}), md5('p' || i), 'pass.lu.example.loyalty', md5('s' || (1 + i * 3 % {N_CARDS})),
              now() - interval '100 days'
       FROM generate_series(1, {N_REG}) AS i""",
]


def rollup_rebuild_sql() -> list[str]:
    """The migration's own backfill statements (perf01.pg_backfill)."""
    import importlib.util

    path = ROOT / "migrations" / "versions" / "perf01_stats_rollups_search_indexes.py"
    spec = importlib.util.spec_from_file_location("perf01", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pg_backfill()


def load(url: str) -> float:
    import psycopg
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB}"'))
    admin.dispose()
    t0 = time.perf_counter()
    import tempfile

    migrate(url, Path(tempfile.mkdtemp()))
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql in LOAD_SQL:
            t = time.perf_counter()
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute(sql)
            print(f"  load: {' '.join(sql.split())[:70]}… {time.perf_counter() - t:.1f}s", flush=True)
        t = time.perf_counter()
        conn.execute("TRUNCATE loyalty_tx_rollup, loyalty_staff_rollup, loyalty_card_rollup")
        for sql in rollup_rebuild_sql():
            conn.execute(sql)
        conn.execute("ALTER TABLE loyalty_transactions ENABLE TRIGGER loyalty_tx_rollup_apply")
        conn.execute("ALTER TABLE loyalty_cards ENABLE TRIGGER loyalty_card_rollup_apply")
        print(f"  load: rollups rebuilt {time.perf_counter() - t:.1f}s", flush=True)
        t = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"  load: VACUUM ANALYZE {time.perf_counter() - t:.1f}s", flush=True)
    return time.perf_counter() - t0




def old_search_cards(actor, q=None, program_id=None, *, limit=50, offset=0):
    """cards.search_cards as it was before perf01 (lower(name) LIKE: no index can serve it)."""
    from sqlalchemy import func, or_

    from portal.extensions import db
    from portal.models import LoyaltyCard
    from portal.services.cards import _vendor_scoped, select

    stmt = _vendor_scoped(select(LoyaltyCard), actor).where(LoyaltyCard.erased_at.is_(None))
    if program_id is not None:
        stmt = stmt.where(LoyaltyCard.program_id == program_id)
    q = (q or "").strip()[:100]
    if q:
        digits = re.sub(r"[\s\-.]", "", q)
        conditions = []
        if digits.isdigit():
            conditions.append(LoyaltyCard.card_number.startswith(digits, autoescape=True))
            conditions.append(LoyaltyCard.customer_phone.contains(digits.lstrip("0"), autoescape=True))
        lowered = q.lower()
        if "@" in q:
            conditions.append(LoyaltyCard.customer_email.startswith(lowered, autoescape=True))
        else:
            conditions.append(func.lower(LoyaltyCard.customer_name).contains(lowered, autoescape=True))
            conditions.append(LoyaltyCard.customer_email.startswith(lowered, autoescape=True))
        stmt = stmt.where(or_(*conditions))
    stmt = stmt.order_by(LoyaltyCard.updated_at.desc(), LoyaltyCard.id.desc()).limit(min(limit, 200)).offset(offset)
    return list(db.session.scalars(stmt))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", action="store_true", help="use an already loaded bench_scale database")
    parser.add_argument("--keep", action="store_true", help="do not drop bench_scale at the end")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    url = pg_url(DB)
    if not args.reuse:
        print(f"== loading {N_CARDS:,} cards, {N_TX:,} transactions, {N_REG:,} registrations", flush=True)
        print(f"  total load {load(url):.0f}s", flush=True)

    from sqlalchemy import text

    from portal.extensions import db
    from portal.services import cards, exports, stats
    from portal.services.actor import Actor
    from portal.services.wallet import apple_service

    app = make_app(url, LOG_LEVEL="WARNING")
    actor = Actor(vendor_id=1, role="owner", user_id=None, name="owner")
    out: dict[str, dict] = {}

    def report(name, result, baseline, target_ms=None):
        ratio = baseline["p50"] / result["p50"] if result["p50"] else float("inf")
        out[name] = {"p50_ms": round(result["p50"], 2), "p95_ms": round(result["p95"], 2),
                     "baseline_p50_ms": round(baseline["p50"], 2), "baseline_p95_ms": round(baseline["p95"], 2),
                     "speedup": round(ratio, 1)}
        verdict = "" if target_ms is None else (" PASS" if result["p95"] < target_ms else " MISS") + \
            f" (target < {target_ms} ms)"
        print(f"  {name:34s} p50 {result['p50']:8.2f} ms  p95 {result['p95']:8.2f} ms | baseline p50 "
              f"{baseline['p50']:8.2f} p95 {baseline['p95']:8.2f} ms | {ratio:6.1f}x faster{verdict}", flush=True)

    with app.app_context():
        db.session.execute(text("SELECT 1"))
        n = db.session.execute(text("SELECT (SELECT count(*) FROM loyalty_cards), (SELECT count(*) FROM "
                                    "loyalty_transactions), (SELECT count(*) FROM apple_device_registrations)")).one()
        print(f"== bench_scale: {n[0]:,} cards, {n[1]:,} transactions, {n[2]:,} registrations; repeat {args.repeat}")

        # ---- Apple "updated since"
        import itertools

        devices = itertools.cycle(range(0, N_DEVICES, 997))
        tag = str(int((time.time() - 30 * 86400) * 1_000_000))

        def apple():
            apple_service.updated_serials(f"device{next(devices)}", "pass.lu.example.loyalty", tag)
            db.session.rollback()

        def apple_unindexed():
            db.session.execute(text("SET LOCAL enable_indexscan = off"))
            db.session.execute(text("SET LOCAL enable_bitmapscan = off"))
            db.session.execute(text("SET LOCAL enable_indexonlyscan = off"))
            apple_service.updated_serials(f"device{next(devices)}", "pass.lu.example.loyalty", tag)
            db.session.rollback()

        report("apple updated-since", timed(apple, args.repeat * 3),
               timed(apple_unindexed, max(3, args.repeat // 10), warmup=1), target_ms=10)

        # ---- card search
        queries = {"name": "anna weber 12", "name_part": "hoffm", "email prefix": "customer12345@",
                   "phone digits": "621 123", "card number prefix": "1000079"}
        for label, q in queries.items():
            fast = timed(lambda: (cards.search_cards(actor, q), db.session.rollback()), args.repeat)
            slow = timed(lambda: (old_search_cards(actor, q), db.session.rollback()), max(3, args.repeat // 10),
                         warmup=1)
            got = [c.id for c in cards.search_cards(actor, q)]
            ref = [c.id for c in old_search_cards(actor, q)]
            db.session.rollback()
            assert got == ref, f"search {q!r}: new implementation returns other cards"
            report(f"search_cards {label} ({len(got)})", fast, slow)

        # ---- dashboard
        fast = timed(lambda: (stats.vendor_stats(actor, 30), db.session.rollback()), args.repeat)
        slow = timed(lambda: (stats.vendor_stats_live(actor, 30), db.session.rollback()), max(3, args.repeat // 6),
                     warmup=1)
        def same(days):
            a, b = stats.vendor_stats(actor, days), stats.vendor_stats_live(actor, days)
            db.session.rollback()
            # top_staff: the live query orders equal counts arbitrarily; compare the counts, then the rest
            ok = [s["actions"] for s in a.pop("top_staff")] == [s["actions"] for s in b.pop("top_staff")]
            return ok and a == b, a, b

        exact, a, b = same(30)
        report("vendor_stats 30 days", fast, slow, target_ms=100)
        print(f"  rollup figures == live figures: {exact}")
        if not exact:
            print(json.dumps({"rollup": a, "live": b}, default=str)[:3000])
        fast = timed(lambda: (stats.vendor_stats(actor, 365), db.session.rollback()), max(5, args.repeat // 3))
        slow = timed(lambda: (stats.vendor_stats_live(actor, 365), db.session.rollback()), 3, warmup=1)
        report("vendor_stats 365 days", fast, slow, target_ms=100)
        exact365 = same(365)[0]
        print(f"  rollup figures == live figures (365 days): {exact365}")
        out["rollup_exact"] = {"30": exact, "365": exact365}

        # ---- CSV export streaming
        for label, fn in (("transactions_csv", exports.transactions_csv), ("cards_csv", exports.cards_csv)):
            tracemalloc.start()
            t0 = time.perf_counter()
            rows = size = 0
            first_chunk_at = None
            for chunk in fn(actor):
                if first_chunk_at is None:
                    first_chunk_at = time.perf_counter() - t0
                rows += chunk.count("\n")
                size += len(chunk)
            elapsed = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            db.session.rollback()
            out[label] = {"rows": rows, "seconds": round(elapsed, 1), "rows_per_s": round(rows / elapsed),
                          "first_chunk_ms": round(first_chunk_at * 1000, 1), "peak_python_mb": round(peak / 2**20, 1),
                          "mb": round(size / 2**20)}
            print(f"  export {label}: {rows:,} rows, {size / 2**20:.0f} MB in {elapsed:.1f}s "
                  f"({rows / elapsed:,.0f} rows/s), first chunk after {first_chunk_at * 1000:.0f} ms, "
                  f"peak traced Python memory {peak / 2**20:.1f} MB", flush=True)
        db.session.remove()
        db.engine.dispose()
    print(json.dumps(out))
    if not args.keep:
        from sqlalchemy import create_engine

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

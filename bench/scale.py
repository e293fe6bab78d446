"""Queries at scale on PostgreSQL: 1,000,000 cards, 200,000 Apple registrations, 5,000,000 transactions.

    .venv/bin/python bench/scale.py [--reuse] [--keep] [--repeat 30] [--only dashboard ...]

Loads a dedicated database ``bench_scale`` (migrated with Alembic, i.e. ``flask db upgrade``) with generate_series
INSERTs: one vendor with a stamp program (700,000 cards) and a points program (300,000 cards), 5,000,000 ledger
rows over 400 days by 10 staff, 200,000 registrations (100,000 devices × 2 passes). The rollup triggers are
switched off during the bulk load and the rollups are rebuilt afterwards with the migration's own SQL; the bench
then checks that the rollups give exactly the live aggregates. ``--reuse`` measures an already loaded database
(migrated to the newest revision first) and drops it at the end unless ``--keep`` is given too; ``--only`` runs
some sections (apple, search, dashboard, export).

Each query is timed in-process (p50/p95 over ``--repeat`` runs) against a baseline measured in the same run:

* Apple "updated since" (``apple_service.updated_serials``) vs the same SQL with index scans disabled;
* card search (``cards.search_cards``: name, e-mail prefix, phone digits, card number prefix) vs the previous
  implementation (``lower(name) LIKE``, no trigram index usable);
* owner dashboard ``stats.vendor_stats`` (rollups and day cache) vs ``stats.vendor_stats_live`` (ledger scan), for
  7, 30, 90 and 365 days, warm (closed days cached) and cold (day cache emptied before each call); the exit status
  is 1 unless both equal the live figures;
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

from common import PG_ADMIN, make_app, migrate, percentile, pg_url, timed  # noqa: E402

DB = "bench_scale"
SECTIONS = ("apple", "search", "dashboard", "staff", "export")
PERIODS = (7, 30, 90, 365)
N_CARDS, N_STAMP_CARDS, N_TX, N_REG, N_DEVICES = 1_000_000, 700_000, 5_000_000, 200_000, 100_000

# Row triggers switched off during the bulk load (and on again after the rollups are rebuilt): the rollups of
# perf01 and the day-cache invalidation of perf03 (the cache starts empty).
LOAD_TRIGGERS = (("loyalty_transactions", "loyalty_tx_rollup_apply"), ("loyalty_cards", "loyalty_card_rollup_apply"),
                 ("loyalty_transactions", "loyalty_day_rollup_tx"), ("loyalty_cards", "loyalty_day_rollup_cards"))
LOAD_SQL = [
    *(f"ALTER TABLE {table} DISABLE TRIGGER {name}" for table, name in LOAD_TRIGGERS),
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
        for table, name in LOAD_TRIGGERS:
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
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
    parser.add_argument("--reuse", action="store_true",
                        help="use an already loaded bench_scale database (brought up to the newest migration)")
    parser.add_argument("--keep", action="store_true", help="do not drop bench_scale at the end (also with --reuse)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run only this section (may be repeated); default: all")
    args = parser.parse_args()
    sections = set(args.only or SECTIONS)
    url = pg_url(DB)
    if args.reuse:
        import tempfile

        migrate(url, Path(tempfile.mkdtemp()))  # a database loaded by an older checkout gets the newer revisions
    else:
        print(f"== loading {N_CARDS:,} cards, {N_TX:,} transactions, {N_REG:,} registrations", flush=True)
        print(f"  total load {load(url):.0f}s", flush=True)

    from sqlalchemy import text

    from portal.extensions import db
    from portal.services import cards, clock, exports, stats
    from portal.services.actor import Actor
    from portal.services.wallet import apple_service

    app = make_app(url, LOG_LEVEL="WARNING")
    actor = Actor(vendor_id=1, role="owner", user_id=None, name="owner")
    out: dict[str, dict] = {}
    exact: dict[str, bool] = {}

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
        if "apple" in sections:
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
        if "search" in sections:
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

        # ---- dashboard: every period cold (day cache emptied first: the first request of a new database or after
        # an invalidation) and warm (the closed days cached), against the live aggregate over the ledger
        if "dashboard" in sections:
            def cold_call(days):
                db.session.execute(text("DELETE FROM loyalty_day_rollup"))  # the staff rows go with it (cascade)
                db.session.commit()
                t0 = time.perf_counter()
                stats.vendor_stats(actor, days)
                db.session.commit()  # keep what it cached, as a request does
                return (time.perf_counter() - t0) * 1000

            def same(days):
                """Cold, warm and live figures at one pinned moment (the live 365 days takes seconds; with a
                moving clock the window would move under it)."""
                runs = []
                with clock.pinned(clock.now()):
                    db.session.execute(text("DELETE FROM loyalty_day_rollup"))
                    db.session.commit()
                    for _ in ("cold", "warm"):
                        runs.append(stats.vendor_stats(actor, days))
                        db.session.commit()
                    live = stats.vendor_stats_live(actor, days)
                    db.session.rollback()
                # top_staff: the live query orders equal counts arbitrarily; compare the counts, then the rest
                counts = [s["actions"] for s in live.pop("top_staff")]
                ok = all([s["actions"] for s in run.pop("top_staff")] == counts and run == live for run in runs)
                return ok, runs, live

            for days in PERIODS:
                samples = [cold_call(days) for _ in range(max(3, args.repeat // 3))]
                cold = {"p50": percentile(samples, 50), "p95": percentile(samples, 95)}
                warm = timed(lambda: (stats.vendor_stats(actor, days), db.session.rollback()), args.repeat)
                slow = timed(lambda: (stats.vendor_stats_live(actor, days), db.session.rollback()),
                             3 if days > 90 else max(3, args.repeat // 6), warmup=1)
                report(f"vendor_stats {days} days", warm, slow, target_ms=100)
                report(f"vendor_stats {days} days cold", cold, slow)
                ok, runs, live = same(days)
                exact[str(days)] = ok
                print(f"  rollup figures (cold and warm) == live figures ({days} days): {ok}", flush=True)
                if not ok:
                    print(json.dumps({"cold": runs[0], "warm": runs[1], "live": live}, default=str)[:3000])
            out["rollup_exact"] = exact

        # ---- the Staff view of one person (issue 17): the previous full ISO week of "Staff 3" (≈ 8 000 of their
        # ledger rows), its signals; baseline: the same call with index scans off (the week's rows found by a scan
        # of the ledger). Then the shop-wide computations (every person: the people list, the dashboard's badge)
        # and, as a worst case, the person's view with opening hours 08:00–18:00 Monday to Saturday (the bench's
        # ledger is spread over 24 hours: most of its rows fall outside them and are listed as signals).
        if "staff" in sections:
            import datetime as dt

            from portal.services import staff_signals

            week = staff_signals.week_label(staff_signals.parse_week(None, "Europe/Luxembourg")
                                            - dt.timedelta(weeks=1))

            def person():
                staff_signals.person(actor, "Staff 3", week)
                db.session.rollback()

            def person_unindexed():
                for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
                    db.session.execute(text(f"SET LOCAL {setting} = off"))
                staff_signals.person(actor, "Staff 3", week)
                db.session.rollback()

            view = staff_signals.person(actor, "Staff 3", week)
            db.session.rollback()
            print(f"  staff view {week}: {view['totals']['actions']} actions of Staff 3, "
                  f"{len(view['signals'])} signal(s): {sorted({s.kind for s in view['signals']})}", flush=True)
            slow = timed(person_unindexed, max(3, args.repeat // 5), warmup=1)
            report("staff view, one person, one week", timed(person, args.repeat), slow, target_ms=100)
            report("staff people list (all persons)",
                   timed(lambda: (staff_signals.people(actor, week), db.session.rollback()), max(3, args.repeat // 2),
                         warmup=1), slow)
            report("dashboard badge (2 weeks, all)",
                   timed(lambda: (staff_signals.unreviewed_count(actor), db.session.rollback()),
                         max(3, args.repeat // 2), warmup=1), slow)
            staff_signals.set_opening_hours(actor, {**{f"opens_{d}": "08:00" for d in range(6)},
                                                    **{f"closes_{d}": "18:00" for d in range(6)}})
            db.session.commit()
            try:
                view = staff_signals.person(actor, "Staff 3", week)
                db.session.rollback()
                listed = sum(len(s.transactions) for s in view["signals"])
                print(f"  with opening hours: {len(view['signals'])} signal(s) listing {listed} transactions",
                      flush=True)
                report("staff view with opening hours", timed(person, args.repeat), slow, target_ms=100)
            finally:
                staff_signals.set_opening_hours(actor, {})
                db.session.commit()

        # ---- CSV export streaming
        if "export" in sections:
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
                              "first_chunk_ms": round(first_chunk_at * 1000, 1),
                              "peak_python_mb": round(peak / 2**20, 1), "mb": round(size / 2**20)}
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
    return 0 if all(exact.values()) else 1  # the dashboard must equal the live aggregate


if __name__ == "__main__":
    sys.exit(main())

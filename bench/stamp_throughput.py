"""Stamp API throughput under gunicorn, against a bare one-INSERT WSGI app (the ceiling) in the same run.

    .venv/bin/python bench/stamp_throughput.py [--db pg|sqlite|both] [--seconds 15] [--workers 4]

For each database: a fresh migrated database, a stamp program with no cooldown and no daily limit (so every
stamp is accepted and the full write path runs), 2,000 cards, one staff PIN (bcrypt cost 12) and an API key.
wrk POSTs one stamp per request with ``Authorization: Bearer``, cycling the cards. Three runs with the same
gunicorn configuration: the bare app (ceiling), stamps without a PIN, stamps with a PIN required.
Targets: no PIN ≥ 0.50 × ceiling, PIN ≥ 0.25 × ceiling.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, app_env, database, gunicorn, run_wrk, seed_stamp_shop, stamp_lua  # noqa: E402


def run_db(kind: str, seconds: int, workers: int, worker_class: str, threads: int, connections: int) -> dict:
    from sqlalchemy import create_engine, text

    with database(kind, "bench_stamps") as url:
        seed = seed_stamp_shop(url, cards=2000, pins=1, require_pin=False)
        env = app_env(url)
        results = {}
        from bare_app import create_table

        create_table(url)
        lua = stamp_lua(seed["cards"], seed["key"])
        with gunicorn("bare_app:app", env, workers=workers, worker_class=worker_class, threads=threads,
                      cwd=ROOT / "bench") as (port, _):
            results["ceiling"] = run_wrk(f"http://127.0.0.1:{port}", lua.replace("/api/v1/vendor/loyalty", "/bare"),
                                         seconds=seconds, connections=connections)
        with gunicorn("wsgi:app", env, workers=workers, worker_class=worker_class, threads=threads) as (port, _):
            results["stamp_no_pin"] = run_wrk(f"http://127.0.0.1:{port}", lua, seconds=seconds,
                                              connections=connections)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE loyalty_programs SET require_pin = true WHERE id = :id"),
                         {"id": seed["program_id"]})
        engine.dispose()
        lua_pin = stamp_lua(seed["cards"], seed["key"], pin=seed["pins"][0])
        with gunicorn("wsgi:app", env, workers=workers, worker_class=worker_class, threads=threads) as (port, _):
            results["stamp_pin"] = run_wrk(f"http://127.0.0.1:{port}", lua_pin, seconds=seconds,
                                           connections=connections)
        engine = create_engine(url)
        with engine.connect() as conn:
            stamps = conn.execute(text("SELECT count(*) FROM loyalty_transactions")).scalar()
        engine.dispose()
        results["transactions_written"] = stamps
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["pg", "sqlite", "both"])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    kinds = ["pg", "sqlite"] if args.db == "both" else [args.db]
    ok = True
    summary = {}
    for kind in kinds:
        r = run_db(kind, args.seconds, args.workers, args.worker_class, args.threads, args.connections)
        ceiling = r["ceiling"]["rps"]
        print(f"== {kind}: gunicorn {args.workers} x {args.worker_class} (threads {args.threads}), "
              f"wrk -t2 -c{args.connections} -d{args.seconds}s")
        for name in ("ceiling", "stamp_no_pin", "stamp_pin"):
            x = r[name]
            ratio = x["rps"] / ceiling if ceiling else 0
            print(f"  {name:13s} {x['rps']:8.1f} req/s  ratio {ratio:5.2f}  p50 {x['latency_ms'].get('50', 0):6.2f} ms"
                  f"  p99 {x['latency_ms'].get('99', 0):6.2f} ms  statuses {x['statuses']}"
                  + (f"  socket errors: {x['socket_errors']}" if x["socket_errors"] else ""))
        no_pin = r["stamp_no_pin"]["rps"] / ceiling
        pin = r["stamp_pin"]["rps"] / ceiling
        bad = {c: n for name in ("stamp_no_pin", "stamp_pin") for c, n in r[name]["statuses"].items() if c != 201}
        verdict = no_pin >= 0.5 and pin >= 0.25 and not bad
        ok &= verdict
        print(f"  ratio no PIN {no_pin:.2f} (target >= 0.50), with PIN {pin:.2f} (target >= 0.25), "
              f"non-201: {bad or 'none'} -> {'PASS' if verdict else 'MISS'}")
        print(f"  ledger rows written: {r['transactions_written']}")
        summary[kind] = {"ceiling_rps": ceiling, "no_pin_rps": r["stamp_no_pin"]["rps"],
                         "pin_rps": r["stamp_pin"]["rps"], "ratio_no_pin": round(no_pin, 3),
                         "ratio_pin": round(pin, 3)}
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

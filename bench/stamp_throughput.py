"""Stamp API throughput under gunicorn, against one-INSERT baselines measured in the same run.

    .venv/bin/python bench/stamp_throughput.py [--db pg|sqlite|both] [--seconds 10] [--rounds 3]

For each database: a fresh migrated database with two shops, each with a stamp program without cooldown or daily
limit (so every stamp is accepted and the full write path runs), 2,000 cards, one staff PIN (bcrypt cost 12) and
an API key; one program requires the PIN, the other does not. wrk POSTs one stamp per request with
``Authorization: Bearer``, cycling the cards. Five runs with the same gunicorn configuration, repeated in turn:

* ``plain``: a plain Flask + Flask-SQLAlchemy application, no portal code, whose route does one INSERT and
  commits (``bench/plain_flask_app.py``) — the baseline of the targets;
* ``ceiling``: the portal's own application (``create_app``, same hooks, engine and per-request transaction)
  serving a bare route that does one INSERT (``bench/bare_flask_app.py``): what the portal's request stack
  costs before any rule runs (its ratio to ``plain``);
* ``raw_wsgi``: for reference, a bare WSGI function doing the same INSERT with the driver directly
  (``bench/bare_app.py``): what gunicorn and the database alone allow, with no framework at all;
* ``floor``: the same plain application's second route, the SQL of a stamp written by hand (key look-up, card
  read with its program and vendor, ledger row, card update, outbox row, one commit — no rules, no ORM objects):
  what any stamp written through SQLAlchemy's ordinary execution can reach at best (its ratio to ``plain``);
* stamps without a PIN, and stamps with a PIN required.

Targets (ratios to ``plain``): no PIN ≥ 0.35 on PostgreSQL and ≥ 0.55 on SQLite; with a PIN ≥ 0.30 and ≥ 0.45.
Ratios against ``ceiling`` and ``raw_wsgi`` are printed too.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, app_env, cpu_seconds, database, gunicorn, run_wrk, seed_stamp_shop, stamp_lua  # noqa: E402


RUNS = ("raw_wsgi", "plain", "ceiling", "floor", "stamp_no_pin", "stamp_pin")
RATIO_RUNS = ("ceiling", "floor", "stamp_no_pin", "stamp_pin")
TARGETS = {"pg": (0.35, 0.30), "sqlite": (0.55, 0.45)}  # (no PIN, PIN) × plain


def run_db(kind: str, seconds: int, workers: int, worker_class: str, threads: int, connections: int,
           rounds: int) -> dict:
    """The four servers run side by side (idle ones cost nothing); wrk drives them in turn, ``rounds`` times,
    so each stamp figure is measured right next to its ceiling and a drift of the machine's speed during the
    run (other load, CPU frequency) affects both alike. The per-round ratios and their median are reported."""
    from contextlib import ExitStack

    from sqlalchemy import create_engine, text

    with database(kind, "bench_stamps") as url:
        plain = seed_stamp_shop(url, cards=2000, pins=1, require_pin=False, label="nopin")
        with_pin = seed_stamp_shop(url, cards=2000, pins=1, require_pin=True, label="pin")
        env = app_env(url, PYTHONPATH=str(ROOT))
        from bare_app import create_table

        create_table(url)
        lua = stamp_lua(plain["cards"], plain["key"])
        scripts = {"raw_wsgi": lua.replace("/api/v1/vendor/loyalty", "/bare"),
                   "plain": lua.replace("/api/v1/vendor/loyalty", "/bare"),
                   "ceiling": lua.replace("/api/v1/vendor/loyalty", "/bare"),
                   "floor": lua.replace("/api/v1/vendor/loyalty", "/floor"),
                   "stamp_no_pin": lua,
                   "stamp_pin": stamp_lua(with_pin["cards"], with_pin["key"], pin=with_pin["pins"][0])}
        options = dict(workers=workers, worker_class=worker_class, threads=threads)
        with ExitStack() as stack:
            servers = {
                "raw_wsgi": stack.enter_context(gunicorn("bare_app:app", env, cwd=ROOT / "bench", **options)),
                "plain": stack.enter_context(gunicorn("plain_flask_app:app", env, cwd=ROOT / "bench", **options)),
                "ceiling": stack.enter_context(gunicorn("bare_flask_app:app", env, cwd=ROOT / "bench", **options)),
            }
            servers["floor"] = servers["plain"]
            servers["stamp_no_pin"] = servers["stamp_pin"] = stack.enter_context(gunicorn("wsgi:app", env, **options))
            ports = {name: port for name, (port, _) in servers.items()}
            for name in RUNS:  # warm-up: imports, bcrypt once per worker, statement caches, prepared statements
                run_wrk(f"http://127.0.0.1:{ports[name]}", scripts[name], seconds=3, connections=connections,
                        warmup=0)
            results = {name: [] for name in RUNS}
            for _ in range(rounds):
                for name in RUNS:
                    # CPU used per request by the server's processes (and by PostgreSQL's): far less sensitive
                    # to the machine's load than requests per second, and what the ratios come down to.
                    pgid = servers[name][1].pid

                    def db_cpu() -> float:
                        return cpu_seconds(comm="postgres") if kind == "pg" else 0.0

                    app_before, db_before = cpu_seconds(pgid), db_cpu()
                    x = run_wrk(f"http://127.0.0.1:{ports[name]}", scripts[name], seconds=seconds,
                                connections=connections, warmup=0)
                    requests = max(1, sum(x["statuses"].values()))
                    x["cpu_ms"] = (cpu_seconds(pgid) - app_before) / requests * 1000
                    x["db_cpu_ms"] = (db_cpu() - db_before) / requests * 1000
                    results[name].append(x)
        engine = create_engine(url)
        with engine.connect() as conn:
            results["transactions_written"] = conn.execute(text("SELECT count(*) FROM loyalty_transactions")).scalar()
        engine.dispose()
    return results


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["pg", "sqlite", "both"])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="times each of the five runs is repeated")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    kinds = ["pg", "sqlite"] if args.db == "both" else [args.db]
    ok = True
    summary = {}
    for kind in kinds:
        r = run_db(kind, args.seconds, args.workers, args.worker_class, args.threads, args.connections, args.rounds)
        print(f"== {kind}: gunicorn {args.workers} x {args.worker_class} (threads {args.threads}), "
              f"wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds")
        for i in range(args.rounds):
            plain = r["plain"][i]["rps"]
            line = [f"  round {i + 1}:"]
            for name in RUNS:
                x = r[name][i]
                line.append(f"{name} {x['rps']:7.1f}/s" + (f" ({x['rps'] / plain:.2f})"
                                                           if name in RATIO_RUNS else ""))
            print("  ".join(line))
        stats = {}
        for name in RUNS:
            runs = r[name]
            stats[name] = {"rps": _median([x["rps"] for x in runs]),
                           "p50_ms": _median([x["latency_ms"].get("50", 0) for x in runs]),
                           "p99_ms": _median([x["latency_ms"].get("99", 0) for x in runs]),
                           "cpu_ms": _median([x["cpu_ms"] for x in runs]),
                           "db_cpu_ms": _median([x["db_cpu_ms"] for x in runs])}
        ratios = {name: _median([r[name][i]["rps"] / r["plain"][i]["rps"] for i in range(args.rounds)])
                  for name in RATIO_RUNS}
        ceiling_ratios = {name: _median([r[name][i]["rps"] / r["ceiling"][i]["rps"] for i in range(args.rounds)])
                          for name in ("stamp_no_pin", "stamp_pin")}
        raw_ratios = {name: _median([r[name][i]["rps"] / r["raw_wsgi"][i]["rps"] for i in range(args.rounds)])
                      for name in ("plain",) + RATIO_RUNS}
        for name in RUNS:
            x = stats[name]
            note = f"ratio {ratios[name]:.2f}" if name in ratios else ""
            if name in ceiling_ratios:
                note += f"  (to ceiling {ceiling_ratios[name]:.2f})"
            if name in raw_ratios:
                note += f"  (to raw WSGI {raw_ratios[name]:.2f})"
            cpu = f"CPU/request {x['cpu_ms']:.2f} ms" + (f" + PostgreSQL {x['db_cpu_ms']:.2f} ms" if kind == "pg" else "")
            print(f"  {name:13s} median {x['rps']:8.1f} req/s  p50 {x['p50_ms']:6.2f} ms  p99 {x['p99_ms']:7.2f} ms  "
                  f"{cpu}  {note}")
        bad = {c: n for name in ("floor", "stamp_no_pin", "stamp_pin") for x in r[name] for c, n in x["statuses"].items()
               if c != 201}
        errors = [x["socket_errors"] for name in RUNS for x in r[name] if x["socket_errors"]]
        target_no_pin, target_pin = TARGETS[kind]
        verdict = ratios["stamp_no_pin"] >= target_no_pin and ratios["stamp_pin"] >= target_pin and not bad
        ok &= verdict
        print(f"  median ratio to plain Flask: no PIN {ratios['stamp_no_pin']:.2f} (target >= {target_no_pin:.2f}), "
              f"with PIN {ratios['stamp_pin']:.2f} (target >= {target_pin:.2f}), portal one-INSERT app "
              f"{ratios['ceiling']:.2f}, hand-written stamp SQL (floor) {ratios['floor']:.2f}, non-201: {bad or 'none'}"
              + (f", socket errors: {errors}" if errors else "") + f" -> {'PASS' if verdict else 'MISS'}")
        print(f"  ledger rows written: {r['transactions_written']}")
        summary[kind] = {"raw_wsgi_rps": stats["raw_wsgi"]["rps"], "plain_rps": stats["plain"]["rps"],
                         "ceiling_rps": stats["ceiling"]["rps"], "ratio_ceiling": round(ratios["ceiling"], 3),
                         "floor_rps": stats["floor"]["rps"], "ratio_floor": round(ratios["floor"], 3),
                         "no_pin_rps": stats["stamp_no_pin"]["rps"], "pin_rps": stats["stamp_pin"]["rps"],
                         "ratio_no_pin": round(ratios["stamp_no_pin"], 3), "ratio_pin": round(ratios["stamp_pin"], 3),
                         "ratio_no_pin_to_raw": round(raw_ratios["stamp_no_pin"], 3),
                         "ratio_pin_to_raw": round(raw_ratios["stamp_pin"], 3),
                         "cpu_ms": {name: round(stats[name]["cpu_ms"] + stats[name]["db_cpu_ms"], 3) for name in RUNS}}
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

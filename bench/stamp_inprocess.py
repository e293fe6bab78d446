"""One request after another through the app in-process (no server, no concurrency): the time of a stamp next to
the portal's one-INSERT route, the plain Flask app's and the plain app's stamp SQL written by hand (``floor``), best of ``--rounds`` × ``--requests``: wall time and
the CPU time of this process (on SQLite everything; on PostgreSQL without the server's). Least sensitive
to the machine's load of the figures in docs/performance.md §1.

    .venv/bin/python bench/stamp_inprocess.py [--db pg|sqlite|both] [--requests 300] [--rounds 3]
    .venv/bin/python bench/stamp_inprocess.py --db sqlite --profile stamp_no_pin   # cProfile of one route

The requests are WSGI calls with a prepared environ (``werkzeug.test.EnvironBuilder``), not the test client, so
what is timed is the application's own work.
"""
from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PEPPER, SECRET, database, seed_stamp_shop  # noqa: E402

NAMES = ("plain", "ceiling", "floor", "stamp_no_pin", "stamp_pin")


def _caller(app, path: str, key: str | None, body: dict):
    from werkzeug.test import EnvironBuilder

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    payload = json.dumps(body).encode()

    def call() -> int:
        environ = EnvironBuilder(path=path, method="POST", headers=headers, data=payload,
                                 content_type="application/json").get_environ()
        status = []
        chunks = app(environ, lambda s, h, exc_info=None: status.append(s))
        for _ in chunks:
            pass
        if hasattr(chunks, "close"):
            chunks.close()
        return int(status[0].split()[0])

    return call


def measure(kind: str, requests: int, rounds: int, profile: str | None) -> dict:
    from bare_app import create_table

    with database(kind, "bench_inprocess") as url:
        shops = {"stamp_no_pin": seed_stamp_shop(url, cards=requests, pins=1, require_pin=False, label="np"),
                 "stamp_pin": seed_stamp_shop(url, cards=requests, pins=1, require_pin=True, label="p")}
        create_table(url)
        os.environ.update({"DATABASE_URL": url, "SECRET_KEY": SECRET, "PIN_PEPPER": PEPPER, "BCRYPT_ROUNDS": "12",
                           "LOG_LEVEL": "WARNING", "APP_ENV": "development"})
        apps = {}
        for name, module in (("plain", "plain_flask_app"), ("ceiling", "bare_flask_app")):
            sys.modules.pop(module, None)
            apps[name] = importlib.import_module(module).app
        import wsgi

        apps["floor"] = apps["plain"]  # its second route: a stamp's SQL by hand (bench/plain_flask_app.py)
        apps["stamp_no_pin"] = apps["stamp_pin"] = wsgi.app
        callers = {}
        for name in NAMES:
            if name.startswith("stamp") or name == "floor":
                shop = shops["stamp_pin" if name == "stamp_pin" else "stamp_no_pin"]
                body = {"count": 1, **({"staff_pin": shop["pins"][0]} if name == "stamp_pin" else {})}
                prefix = "/floor" if name == "floor" else "/api/v1/vendor/loyalty"
                paths = [f"{prefix}/cards/{n}/stamps" for n in shop["cards"]]
                key = shop["key"]
            else:
                body, key = {}, None
                paths = [f"/bare/cards/{i}/stamps" for i in range(requests)]
            callers[name] = [_caller(apps[name], p, key, body) for p in paths]
        for calls in callers.values():  # warm-up: imports, bcrypt once, statement caches
            for call in calls[:20]:
                assert call() in (200, 201)
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for call in callers[profile]:
                call()
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(*([os.environ["FILTER"]] if os.environ.get("FILTER") else []), int(os.environ.get("TOP", "60")))
            print(out.getvalue())
        best = {name: float("inf") for name in NAMES}
        cpu = {name: float("inf") for name in NAMES}
        for _ in range(rounds):
            for name in NAMES:
                t0, c0 = time.perf_counter(), time.process_time()
                for call in callers[name]:
                    status = call()
                    assert status in (200, 201), (name, status)
                best[name] = min(best[name], (time.perf_counter() - t0) / requests * 1000)
                cpu[name] = min(cpu[name], (time.process_time() - c0) / requests * 1000)
        best.update({f"{name}_cpu": ms for name, ms in cpu.items()})
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["pg", "sqlite", "both"])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=NAMES)
    args = parser.parse_args()
    if args.db == "both" and args.profile:
        parser.error("--profile needs one --db")
    results = {}
    kinds = ["pg", "sqlite"] if args.db == "both" else [args.db]
    for kind in kinds:
        if len(kinds) > 1:  # one database per process: the app modules bind their engine at import
            import subprocess

            out = subprocess.run([sys.executable, __file__, "--db", kind, "--requests", str(args.requests),
                                  "--rounds", str(args.rounds)], capture_output=True, text=True, check=True).stdout
            results[kind] = json.loads(out.strip().splitlines()[-1])[kind]
            continue
        best = measure(kind, args.requests, args.rounds, args.profile)
        results[kind] = {name: round(ms, 3) for name, ms in best.items()}
    for kind, best in results.items():
        print(f"{kind:6s} wall " + "  ".join(f"{name} {best[name]:.3f} ms" for name in NAMES)
              + f"  (floor/plain {best['floor'] / best['plain']:.2f}, stamp/plain {best['stamp_no_pin'] / best['plain']:.2f}, pin {best['stamp_pin'] / best['plain']:.2f})")
        print(f"{kind:6s} CPU of this process " + "  ".join(f"{name} {best[name + '_cpu']:.3f} ms" for name in NAMES))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stamp latency with 50 staff PINs in the program against 1 PIN (target: ratio ≤ 1.2).

    .venv/bin/python bench/pin_scaling.py [--db pg|sqlite] [--requests 400]

Two stamp programs (PIN required, no cooldown, no daily limit) in one fresh database: one with 1 staff PIN, one
with 50. One gunicorn sync worker; requests are sent one at a time over loopback, alternating between the two
programs so that machine noise hits both alike; the PIN used is the last one created (the "worst" row). Each
PIN is verified by bcrypt once per process and then cached, so the steady state measures the keyed lookup.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import app_env, database, gunicorn, percentile, seed_stamp_shop  # noqa: E402


def main() -> int:
    import httpx

    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="pg", choices=["pg", "sqlite"])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with database(args.db, "bench_pins") as url:
        one = seed_stamp_shop(url, cards=args.requests, pins=1, require_pin=True, bcrypt_rounds=10, label="one")
        fifty = seed_stamp_shop(url, cards=args.requests, pins=50, require_pin=True, bcrypt_rounds=10,
                                label="fifty")
        with gunicorn("wsgi:app", app_env(url), workers=1) as (port, _):
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
            samples = {"one": [], "fifty": []}
            shops = {"one": one, "fifty": fifty}
            # warm-up: bcrypt once per PIN per process, statement caches
            for name, shop in shops.items():
                for number in shop["cards"][:5]:
                    r = client.post(f"/api/v1/vendor/loyalty/cards/{number}/stamps",
                                    json={"count": 1, "staff_pin": shop["pins"][-1]},
                                    headers={"Authorization": f"Bearer {shop['key']}"})
                    assert r.status_code == 201, r.text
            for i in range(5, args.requests):
                for name in (("one", "fifty") if i % 2 else ("fifty", "one")):
                    shop = shops[name]
                    t0 = time.perf_counter()
                    r = client.post(f"/api/v1/vendor/loyalty/cards/{shop['cards'][i]}/stamps",
                                    json={"count": 1, "staff_pin": shop["pins"][-1]},
                                    headers={"Authorization": f"Bearer {shop['key']}"})
                    samples[name].append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 201, r.text
    result = {}
    for name, values in samples.items():
        result[name] = {"p50_ms": round(percentile(values, 50), 2), "p95_ms": round(percentile(values, 95), 2),
                        "n": len(values)}
    ratio50 = result["fifty"]["p50_ms"] / result["one"]["p50_ms"]
    ratio95 = result["fifty"]["p95_ms"] / result["one"]["p95_ms"]
    print(f"== {args.db}: stamp latency, 1 gunicorn worker, sequential requests (alternating programs)")
    print(f"  1 PIN    p50 {result['one']['p50_ms']:7.2f} ms  p95 {result['one']['p95_ms']:7.2f} ms")
    print(f"  50 PINs  p50 {result['fifty']['p50_ms']:7.2f} ms  p95 {result['fifty']['p95_ms']:7.2f} ms")
    verdict = ratio50 <= 1.2
    print(f"  ratio 50/1: p50 {ratio50:.2f}, p95 {ratio95:.2f} (target p50 ratio <= 1.2) -> "
          f"{'PASS' if verdict else 'MISS'}")
    print(json.dumps({"db": args.db, **result, "ratio_p50": round(ratio50, 3), "ratio_p95": round(ratio95, 3)}))
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())

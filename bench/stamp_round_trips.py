"""SQL round trips of one stamp through the real app (test client), per database — the figure in
docs/performance.md.

    .venv/bin/python bench/stamp_round_trips.py [--db pg|sqlite|both]

Counts every statement the driver executes (SQLAlchemy's ``before_cursor_execute``), plus PostgreSQL's ``BEGIN``
(psycopg sends it before the first statement) and every ``COMMIT``, for the steady state of a stamp without a
PIN and with one: an API key, a program without cooldown or daily limit and one with a daily limit.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import database, make_app, seed_stamp_shop  # noqa: E402


def count(kind: str) -> dict:
    from sqlalchemy import event

    from portal.extensions import db

    results = {}
    with database(kind, "bench_round_trips") as url:
        shops = {"no_pin": seed_stamp_shop(url, cards=5, pins=1, require_pin=False, bcrypt_rounds=4, label="np"),
                 "pin": seed_stamp_shop(url, cards=5, pins=1, require_pin=True, bcrypt_rounds=4, label="p")}
        app = make_app(url, BCRYPT_ROUNDS=4)
        with app.app_context():
            engine = db.engine
            seen: list[str] = []
            event.listen(engine, "before_cursor_execute",
                         lambda conn, cur, statement, *a: seen.append(statement.split(None, 1)[0].upper()))
            if kind == "pg":
                event.listen(engine, "begin", lambda conn: seen.append("BEGIN"))
            event.listen(engine, "commit", lambda conn: seen.append("COMMIT"))
            client = app.test_client()
            for name, shop in shops.items():
                body = {"staff_pin": shop["pins"][0]} if shop["pins"] and name == "pin" else {}
                path = f"/api/v1/vendor/loyalty/cards/{shop['cards'][0]}/stamps"
                headers = {"Authorization": f"Bearer {shop['key']}"}
                for _ in range(3):  # the last one is the steady state
                    seen.clear()
                    response = client.post(path, json=body, headers=headers)
                    assert response.status_code == 201, response.get_data(as_text=True)
                results[name] = {"round_trips": len(seen), "statements": dict(Counter(seen))}
            db.engine.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["pg", "sqlite", "both"])
    args = parser.parse_args()
    for kind in (["pg", "sqlite"] if args.db == "both" else [args.db]):
        for name, r in count(kind).items():
            print(f"{kind:6s} {name:7s} {r['round_trips']:2d} round trips  {r['statements']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A message to 10,000 pass holders: the owner's request (queue) and one worker's drain through the APNs and Google
stand-ins, each against a baseline measured in the same run.

    .venv/bin/python bench/messages.py [--cards 10000] [--db sqlite|pg|both] [--repeat 3]

Per database (a fresh migrated one): a shop, a stamp program, ``--cards`` cards inserted in bulk, each with one
registered Apple device; the stand-ins of tests/wallet_support (APNs over HTTP/2 and mutual TLS, Google Wallet's
REST API with ``addMessage`` and its 3-notifications-a-day quota) on loopback. A first drain creates the cards'
Google objects (timed, not the subject).

* Owner's request, in-process (Flask test client, API key): ``POST /messages`` to every card (``send: true``: one
  INSERT … SELECT of the deliveries, the cards' Last-Modified, one outbox row per card), against ``GET /programs``
  (a request that writes nothing). Medians of ``--repeat``; the rows of all but the last are marked delivered.
* Drain: one ``WalletWorker`` delivers the message to every card (one APNs push, one Google ``addMessage``), against
  the stand-ins' own rate: the same number of pushes with the same ``ApnsClient`` and of ``addMessage`` calls with
  the same ``GoogleWalletClient``, one after the other, without the database.

The last line is a JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402
from design_updates import drain, pending, seed, standins, standins_alone, timed, wallet_app  # noqa: E402


def mark_all_sent(app) -> None:
    from sqlalchemy import update

    from portal.extensions import db
    from portal.models import PassMessageDelivery, WalletOutbox
    from portal.services import clock

    with app.app_context():
        db.session.execute(update(WalletOutbox).where(WalletOutbox.delivered_at.is_(None))
                           .values(delivered_at=clock.now()))
        db.session.execute(update(PassMessageDelivery).where(PassMessageDelivery.status == "pending")
                           .values(status="sent", google_mode="silent", sent_at=clock.now()))
        db.session.commit()
        db.session.remove()


def run(kind: str, n: int, repeat: int, pki, apns, gstandin, service_account) -> dict:
    from portal.services import wallet_outbox
    from portal.services.wallet.worker import WalletWorker

    with common.database(kind, "bench_messages") as url, tempfile.TemporaryDirectory() as instance:
        app = wallet_app(url, Path(instance), pki, apns, gstandin, service_account)
        data = seed(app, n)
        from portal.extensions import db

        with app.app_context():  # every card in a wallet first: the worker creates the Google objects
            wallet_outbox.enqueue_program(data["program_id"])
            db.session.commit()
            db.session.remove()
        first = timed(lambda: WalletWorker(app).run_once(max_rounds=10_000))
        assert pending(app) == 0
        client = app.test_client()
        headers = {"Authorization": f"Bearer {data['key']}"}
        body = {"program_id": data["program_id"], "segment": "all", "send": True,
                "texts": {"en": "Our autumn blend is here", "fr": "Notre mélange d'automne est arrivé"}}

        def send():
            response = client.post("/api/v1/vendor/loyalty/messages", json=body, headers=headers)
            assert response.status_code == 201, response.get_data(as_text=True)
            assert response.get_json()["progress"]["recipients"] == n

        def baseline_request():
            assert client.get("/api/v1/vendor/loyalty/programs", headers=headers).status_code == 200

        queue, baseline = [], []
        for i in range(repeat):
            baseline.append(timed(baseline_request))
            queue.append(timed(send))
            assert pending(app) == n
            if i < repeat - 1:
                mark_all_sent(app)
        drained, _ = drain(app, apns, gstandin, n)
        added = [r for r in gstandin.requests if r.path.endswith("/addMessage")]
        assert len(added) == n and all(r.status == 200 for r in added)

        # The stand-ins' own rate: the same number of pushes and addMessage calls with the same clients.
        message = {"id": "bench", "header": "Bench", "body": "x", "messageType": "TEXT"}
        apns_alone, google_alone = standins_alone(app, data["tokens"],
                                                  lambda client, object_id: client.add_message(object_id, message),
                                                  list(gstandin.objects)[:n])
        with app.app_context():
            db.engine.dispose()
    return {"first": first, "queue": statistics.median(queue), "baseline": statistics.median(baseline),
            "drain": drained, "apns": apns_alone, "google": google_alone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kinds = ("sqlite", "pg") if args.db == "both" else (args.db,)
    figures = {"cards": args.cards, "loadavg": Path("/proc/loadavg").read_text().split()[:3]}
    with standins() as (pki, apns, gstandin, service_account):
        for kind in kinds:
            r = run(kind, args.cards, args.repeat, pki, apns, gstandin, service_account)
            n = args.cards
            alone = r["apns"] + r["google"]
            print(f"\n{kind}: a message to {n} cards, one worker")
            print(f"  owner's request (queue {n} deliveries)  {r['queue'] * 1000:8.1f} ms   "
                  f"{r['queue'] / r['baseline']:6.1f} × GET /programs ({r['baseline'] * 1000:.1f} ms)   "
                  f"target < 2 s")
            print(f"  drain: {n} pushes + {n} addMessage      {r['drain']:8.2f} s    "
                  f"{n / r['drain']:6.0f} cards/s   target < 60 s")
            print(f"  stand-ins alone: APNs {r['apns']:.2f} s + Google {r['google']:.2f} s = {alone:.2f} s   "
                  f"drain / stand-ins alone = {r['drain'] / alone:.2f}")
            print(f"  (first drain, Google objects inserted: {r['first']:.2f} s)")
            figures[kind] = {k: round(v, 4) for k, v in r.items()}
            figures[kind]["drain_over_standins"] = round(r["drain"] / alone, 3)
    figures["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""A program's design edit reaching 10,000 cards: the owner's request (enqueue) and one worker's drain through the
APNs and Google stand-ins, each against a baseline measured in the same run.

    .venv/bin/python bench/design_updates.py [--cards 10000] [--db sqlite|pg|both] [--repeat 5]

Per database (a fresh migrated one): a shop, a stamp program, ``--cards`` cards inserted in bulk, each with one
registered Apple device; the stand-ins of tests/wallet_support (APNs over HTTP/2 and mutual TLS, Google Wallet's
REST API) on loopback. A first drain creates the cards' Google objects (timed, not the subject).

* Owner's request, in-process (Flask test client, API key): ``PATCH /programs/<id>`` with a new background colour
  (enqueues one row per card: one INSERT … SELECT), the same edit again while those rows wait (coalesced: nothing
  inserted), against the same request changing the cooldown (no wallet update). Medians of ``--repeat``.
* Drain: one ``WalletWorker`` delivers the ``--cards`` rows (one APNs push and one Google object PATCH per card),
  against the stand-ins' own rate: the same number of pushes with the same ``ApnsClient`` and of object PATCHes
  with the same ``GoogleWalletClient``, one after the other, without the database.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402

ISSUER = "3388000000022999111"
PTID = "pass.lu.example.loyalty"


def seed(app, n: int) -> dict:
    from sqlalchemy import insert

    from portal.extensions import db
    from portal.models import AppleDeviceRegistration, LoyaltyCard
    from portal.services import accounts, clock, programs

    with app.app_context():
        vendor, owner = accounts.create_vendor(name="Bench shop", owner_email="owner@bench.test",
                                               owner_password="bench-password-1")
        db.session.commit()
        program = programs.create_program(accounts.actor_for_user(owner), {
            "type": "stamps", "name": "Bench card", "stamps_required": 10, "reward_text": "Coffee",
            "require_pin": False})
        _, key = accounts.create_api_key(vendor=vendor, name="bench")
        db.session.commit()
        now = clock.now()
        cards, regs = [], []
        for i in range(n):
            serial = secrets.token_hex(16)
            cards.append({"program_id": program.id, "card_number": f"{9000000000 + i}", "locale": "en",
                          "public_token": secrets.token_urlsafe(24), "customer_name": f"Customer {i}",
                          "customer_email": f"c{i}@bench.test", "stamps": i % 10, "points": 0,
                          "lifetime_stamps": i % 10, "lifetime_points": 0, "rewards_redeemed": 0,
                          "apple_serial": serial, "apple_auth_token": secrets.token_hex(16), "created_at": now,
                          "updated_at": now})
            regs.append({"device_library_id": f"device{i}", "push_token": secrets.token_hex(32),
                         "pass_type_id": PTID, "serial_number": serial, "created_at": now})
        db.session.execute(insert(LoyaltyCard), cards)
        db.session.execute(insert(AppleDeviceRegistration), regs)
        db.session.commit()
        result = {"program_id": program.id, "key": key, "tokens": [r["push_token"] for r in regs]}
        db.session.remove()
    return result


def pending(app) -> int:
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import WalletOutbox

    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(WalletOutbox)
                                  .where(WalletOutbox.delivered_at.is_(None)))
        db.session.remove()
    return count


def mark_delivered(app) -> None:
    from sqlalchemy import update

    from portal.extensions import db
    from portal.models import WalletOutbox
    from portal.services import clock

    with app.app_context():
        db.session.execute(update(WalletOutbox).where(WalletOutbox.delivered_at.is_(None))
                           .values(delivered_at=clock.now()))
        db.session.commit()
        db.session.remove()


def drain(app, apns, gstandin, n: int):
    """One worker drains the outbox after the stand-ins' records are cleared: ``(seconds, result)``, each of the
    ``n`` cards delivered and pushed exactly once."""
    from portal.services.wallet.worker import WalletWorker

    apns.clear()
    gstandin.clear_requests()
    worker = WalletWorker(app)
    t0 = time.perf_counter()
    result = worker.run_once(max_rounds=10_000)
    seconds = time.perf_counter() - t0
    assert result.delivered == n and result.failed == 0 and result.pushes == n, result
    assert pending(app) == 0 and len(apns.pushes) == n
    return seconds, result


def standins_alone(app, tokens, google_call, items) -> tuple[float, float]:
    """The stand-ins' own rate, with the worker's clients: one APNs push per token, then
    ``google_call(client, item)`` per item; ``(APNs seconds, Google seconds)``."""
    from portal.services.wallet.worker import WalletWorker

    apns_client, google_client = WalletWorker(app).apns(), WalletWorker(app).google()

    def push_all():
        for token in tokens:
            assert apns_client.push(token, PTID).ok

    def call_all():
        for item in items:
            google_call(google_client, item)

    try:
        return timed(push_all), timed(call_all)
    finally:
        apns_client.close()
        google_client.close()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def wallet_app(url: str, instance: Path, pki, apns, gstandin, service_account):
    """The app with its wallets pointing at the stand-ins (also used by bench/messages.py)."""
    return common.make_app(url, instance, PUBLIC_BASE_URL="https://loyalty.example.lu",
                           APPLE_PASS_TYPE_ID=PTID, APPLE_TEAM_ID=pki.team_id, APPLE_PASS_CERT=pki.pass_cert,
                           APPLE_PASS_KEY=pki.pass_key, APPLE_PASS_KEY_PASSWORD=pki.key_password,
                           APPLE_WWDR_CERT=pki.wwdr_cert, APNS_URL=apns.url, APNS_CA_FILE=pki.root_ca,
                           GOOGLE_WALLET_ISSUER_ID=ISSUER, GOOGLE_SERVICE_ACCOUNT_FILE=service_account,
                           GOOGLE_WALLET_API_URL=gstandin.url)


def run(kind: str, n: int, repeat: int, pki, apns, gstandin, service_account) -> dict:
    from portal.services.wallet.worker import WalletWorker

    with common.database(kind, "bench_design_updates") as url, tempfile.TemporaryDirectory() as instance:
        app = wallet_app(url, Path(instance), pki, apns, gstandin, service_account)
        data = seed(app, n)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {data['key']}"}
        path = f"/api/v1/vendor/loyalty/programs/{data['program_id']}"

        def patch(body):
            response = client.patch(path, json=body, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)

        # Everything in wallets first: the cards' Google objects are created by a first drain.
        patch({"background_color": "#101010"})
        assert pending(app) == n
        first = timed(lambda: WalletWorker(app).run_once(max_rounds=10_000))
        assert pending(app) == 0

        enqueue, coalesced, baseline = [], [], []
        for i in range(repeat):
            baseline.append(timed(lambda: patch({"cooldown_minutes": 10 + i})))
            enqueue.append(timed(lambda: patch({"background_color": f"#2030{i:02x}"})))
            assert pending(app) == n
            coalesced.append(timed(lambda: patch({"background_color": f"#3030{i:02x}"})))
            assert pending(app) == n
            if i < repeat - 1:
                mark_delivered(app)
        drained, result = drain(app, apns, gstandin, n)
        assert result.google_updates == n

        # The stand-ins' own rate: the same number of pushes and object PATCHes with the same clients.
        apns_alone, google_alone = standins_alone(app, data["tokens"],
                                                  lambda client, body: client.patch_object(body["id"], body),
                                                  list(gstandin.objects.values())[:n])
        from portal.extensions import db

        with app.app_context():
            db.engine.dispose()
    return {"first": first, "enqueue": statistics.median(enqueue), "coalesced": statistics.median(coalesced),
            "baseline": statistics.median(baseline), "drain": drained, "apns": apns_alone, "google": google_alone}


@contextmanager
def standins():
    """A test PKI, the APNs and Google stand-ins (tests/wallet_support) and a service account for the latter:
    ``(pki, apns, gstandin, service_account)``, for the benchmarks that drain the wallet outbox."""
    from tests.wallet_support.apns_standin import ApnsStandin
    from tests.wallet_support.ca import make_test_pki
    from tests.wallet_support.google_standin import GoogleStandin

    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(Path(tmp) / "pki", key_password="bench-key-password")
        with ApnsStandin(pki) as apns, GoogleStandin(issuer_id=ISSUER) as gstandin:
            yield pki, apns, gstandin, gstandin.make_service_account(Path(tmp) / "google")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kinds = ("sqlite", "pg") if args.db == "both" else (args.db,)
    with standins() as (pki, apns, gstandin, service_account):
        for kind in kinds:
            r = run(kind, args.cards, args.repeat, pki, apns, gstandin, service_account)
            n = args.cards
            alone = r["apns"] + r["google"]
            print(f"\n{kind}: {n} cards, one worker")
            print(f"  owner's design edit (enqueue {n} rows)  {r['enqueue'] * 1000:8.1f} ms   "
                  f"{r['enqueue'] / r['baseline']:5.2f} × a cooldown edit ({r['baseline'] * 1000:.1f} ms)")
            print(f"  the same edit again (coalesced)        {r['coalesced'] * 1000:8.1f} ms   "
                  f"{r['coalesced'] / r['baseline']:5.2f} × a cooldown edit")
            print(f"  drain: {n} pushes + {n} Google PATCHes  {r['drain']:8.2f} s    "
                  f"{n / r['drain']:6.0f} cards/s")
            print(f"  stand-ins alone: APNs {r['apns']:.2f} s + Google {r['google']:.2f} s = {alone:.2f} s   "
                  f"drain / stand-ins alone = {r['drain'] / alone:.2f}")
            print(f"  (first drain, Google objects inserted: {r['first']:.2f} s)")


if __name__ == "__main__":
    main()

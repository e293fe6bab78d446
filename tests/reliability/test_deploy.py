"""Production shape (docs/deploy.md): several app instances and wallet workers on one database, and the rate
limits shared through Redis."""
from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import LoyaltyCard, WalletOutbox
from portal.services import ledger
from tests.wallet_support.google_standin import GoogleStandin

from .server import ROOT, Gunicorn, parallel

pytestmark = pytest.mark.timeout(240)
FLASK = str(Path(sys.executable).with_name("flask"))
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ISSUER = "3388000000022222222"


def test_two_instances_and_two_wallet_workers_keep_the_rules(app, factories, database_url, tmp_path):
    vendor = factories.vendor()
    program = factories.program(vendor, cooldown_minutes=0, daily_stamp_limit=6)
    card = factories.card(program)
    others = [factories.card(program) for _ in range(6)]
    key = factories.api_key(vendor)
    number, card_id = card.card_number, card.id
    other_numbers = [c.card_number for c in others]
    with GoogleStandin(issuer_id=ISSUER) as google:
        wallet_env = {"GOOGLE_WALLET_ISSUER_ID": ISSUER,
                      "GOOGLE_SERVICE_ACCOUNT_FILE": google.make_service_account(tmp_path / "google"),
                      "GOOGLE_WALLET_API_URL": google.url}
        with Gunicorn(database_url, tmp_path, workers=2, env=wallet_env, name="a") as a, \
                Gunicorn(database_url, tmp_path, workers=2, env=wallet_env, name="b") as b:
            workers = [subprocess.Popen([FLASK, "--app", "wsgi", "loyalty", "wallet-worker", "--batch", "3",
                                         "--idle-sleep", "0.05"], cwd=str(ROOT), env={**os.environ, **a.env},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for i in range(int(os.environ.get("TEST_WALLET_WORKERS", "2")))]
            try:
                def stamp(server, target):
                    def call():
                        with httpx.Client(timeout=60) as c:
                            r = c.post(f"{server.url}/api/v1/vendor/loyalty/cards/{target}/stamps", json={"count": 1},
                                       headers={"Authorization": f"Bearer {key}"})
                            return r.status_code
                    return call

                calls = [stamp(a if i % 2 else b, number) for i in range(24)]
                calls += [stamp(a if i % 2 else b, n) for i, n in enumerate(other_numbers * 2)]
                results = Counter(parallel(calls))
                assert results[201] == 6 + 12 and results[429] == 18, results
                assert not [s for s in results if s >= 500], results
                # the workers drain the outbox
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    db.session.rollback()
                    pending = db.session.scalars(select(WalletOutbox).where(WalletOutbox.delivered_at.is_(None))).all()
                    if not pending:
                        break
                    time.sleep(0.2)
                assert not pending, [(r.card_id, r.attempts, r.last_error) for r in pending][:5]
            finally:
                for w in workers:
                    w.terminate()
                for w in workers:
                    w.wait(timeout=30)
            logs = a.log() + b.log()
        assert "Traceback" not in logs, logs[-3000:]
        db.session.rollback()
        assert db.session.get(LoyaltyCard, card_id, populate_existing=True).stamps == 6
        report = ledger.verify()
        assert report.ok, report.problems[:5]
        rows = db.session.scalars(select(WalletOutbox)).all()
        assert all(r.delivered_at is not None for r in rows)
        claimed_by = Counter(r.claimed_by for r in rows)
        writes = [r for r in google.requests if r.method in ("POST", "PATCH", "PUT") and "loyaltyObject" in r.path]
        per_object = Counter(r.path.rsplit("/", 1)[-1] if r.method != "POST" else "insert" for r in writes)
        objects = {c.google_object_id: c.id for c in db.session.scalars(select(LoyaltyCard))}
        rows_per_card = Counter(r.card_id for r in rows)
        patches = Counter(objects.get(r.path.rsplit("/", 1)[-1]) for r in writes if r.method == "PATCH")
        retried = [r for r in rows if r.attempts]
        assert per_object["insert"] == len(rows_per_card)  # one LoyaltyObject per card, inserted once
        # No outbox row is sent twice: per card, at most one PATCH per outbox row of the card (changes may be
        # coalesced, never repeated); the object's insert comes on top (the worker inserts, then patches, also
        # with a single worker).
        for cid, n in rows_per_card.items():
            assert patches[cid] <= n, (cid, n, patches[cid])
        assert not retried, [(r.card_id, r.attempts, r.last_error) for r in retried]
        assert len(claimed_by) >= 1


def _redis_available() -> bool:
    try:
        import redis  # noqa: F401  (Flask-Limiter's Redis storage needs it)
    except ImportError:
        return False
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_available(), reason="Redis (server on 127.0.0.1:6379 and the redis package) needed")
def test_two_app_processes_share_the_rate_limit_through_redis(app, factories, database_url, tmp_path):
    """Enrolment is limited to 20 per hour per client address (ENROLL_RATE_LIMIT). With the limiter on Redis,
    two instances count together: 30 attempts spread over both → exactly 20 accepted. (With memory:// each
    process would accept 20.) A random loopback source address makes the client new to Redis on every run."""
    # Redis keeps its counters between runs, so the client address and the program's slug (the per-IP and the
    # per-program limits' keys) are new on every run. From the OS's randomness: the suite's property tests reseed
    # the random module, which would give every run of the whole suite the same "random" values.
    rng = random.SystemRandom()
    source = f"127.{rng.randint(1, 250)}.{rng.randint(1, 250)}.{rng.randint(2, 250)}"
    vendor = factories.vendor()
    program = factories.program(vendor, name=f"Redis {source} {rng.randrange(10**9)}")
    env = {"RATELIMIT_STORAGE_URI": REDIS_URL}
    with Gunicorn(database_url, tmp_path, workers=1, env=env, name="a") as a, \
            Gunicorn(database_url, tmp_path, workers=1, env=env, name="b") as b:
        statuses = []
        for i in range(30):
            server = a if i % 2 else b
            with httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address=source)) as c:
                r = c.post(f"{server.url}/api/v1/loyalty/programs/{program.slug}/enroll",
                           json={"name": f"Person {i}", "email": f"person{i}-{source}@example.com",
                                 "consent": True})
                statuses.append(r.status_code)
    counts = Counter(statuses)
    assert counts == {201: 20, 429: 10}, counts

"""kill -9 of a gunicorn worker in the middle of stamps: no half transaction survives.

Sixteen client threads stamp forty cards as fast as they can through four workers; two workers are SIGKILLed
while requests are in flight (the master starts new ones). Afterwards ``flask loyalty verify-ledger`` passes,
every balance equals the sum of its ledger, every wallet outbox row belongs to a committed balance change (one
per transaction, plus the enrolment's), and every stamp answered 201 is in the ledger.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction, WalletOutbox

from .server import ROOT, Gunicorn

pytestmark = pytest.mark.timeout(240)
FLASK = str(Path(sys.executable).with_name("flask"))


def test_sigkill_worker_mid_stamps_leaves_no_half_transaction(app, factories, database_url, tmp_path):
    vendor = factories.vendor()
    program = factories.program(vendor, cooldown_minutes=0, daily_stamp_limit=0)
    cards = [factories.card(program) for _ in range(40)]
    key = factories.api_key(vendor)
    numbers = [c.card_number for c in cards]  # plain strings: the threads must not touch the ORM objects
    ids = [c.id for c in cards]
    stop = threading.Event()
    outcomes: Counter = Counter()
    answered_ids: list[int] = []
    lock = threading.Lock()

    with Gunicorn(database_url, tmp_path, workers=4) as server:
        def hammer(index: int) -> None:
            with httpx.Client(timeout=30) as client:
                i = index
                while not stop.is_set():
                    number = numbers[i % len(numbers)]
                    i += 7
                    try:
                        r = client.post(f"{server.url}/api/v1/vendor/loyalty/cards/{number}/stamps",
                                        json={"count": 1}, headers={"Authorization": f"Bearer {key}"})
                    except httpx.HTTPError as exc:  # the worker holding this request was killed
                        with lock:
                            outcomes[type(exc).__name__] += 1
                        continue
                    with lock:
                        outcomes[r.status_code] += 1
                        if r.status_code == 201:
                            answered_ids.append(r.json()["transaction"]["id"])

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        try:
            killed = []
            for _ in range(2):
                time.sleep(1.5)
                victim = server.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            time.sleep(1.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        log = server.log()

    assert outcomes[201] > 20, outcomes
    assert not [code for code in outcomes if isinstance(code, int) and code >= 500], (outcomes, log[-3000:])
    assert all(f"(pid:{pid})" in log or str(pid) in log for pid in killed), log[-2000:]

    env = {**os.environ, **server.env}
    verify = subprocess.run([FLASK, "--app", "wsgi", "loyalty", "verify-ledger", "--json"], cwd=str(ROOT), env=env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] and report["cards_checked"] == len(cards), report

    db.session.rollback()
    sums = dict(db.session.execute(select(LoyaltyTransaction.card_id, func.sum(LoyaltyTransaction.delta))
                                   .where(LoyaltyTransaction.card_id.in_(ids)).group_by(LoyaltyTransaction.card_id)).all())
    counts = dict(db.session.execute(select(LoyaltyTransaction.card_id, func.count())
                                     .where(LoyaltyTransaction.card_id.in_(ids)).group_by(LoyaltyTransaction.card_id)).all())
    for card in db.session.scalars(select(LoyaltyCard).where(LoyaltyCard.id.in_(ids))):
        assert card.stamps == sums.get(card.id, 0) == card.lifetime_stamps
    outbox = Counter((row.card_id, row.reason) for row in db.session.scalars(select(WalletOutbox)))
    for card_id in ids:
        assert outbox[(card_id, "enrolled")] == 1
        assert outbox[(card_id, "balance")] == counts.get(card_id, 0), card_id
    assert sum(outbox.values()) == len(ids) + sum(counts.values())
    stored = set(db.session.scalars(select(LoyaltyTransaction.id).where(LoyaltyTransaction.card_id.in_(ids))))
    assert set(answered_ids) <= stored
    assert len(stored) >= len(answered_ids)

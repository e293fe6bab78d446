"""The real command, as systemd runs it: two `flask --app wsgi loyalty wallet-worker` processes on one database
deliver every change exactly once and stop cleanly on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from portal.extensions import db
from portal.models import AppleDeviceRegistration, LoyaltyCard, WalletOutbox

from .conftest import PUSH_TOKENS

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
V = "/api/v1/vendor/loyalty"
PTID = "pass.lu.example.loyalty"


@pytest.fixture
def app_config(wallet_app_config):
    return wallet_app_config


def _env(app, database_url) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLE_", "GOOGLE_", "APNS_", "WALLET_"))}
    keys = ("SECRET_KEY", "PIN_PEPPER", "PUBLIC_BASE_URL", "APPLE_PASS_TYPE_ID", "APPLE_TEAM_ID", "APPLE_PASS_CERT",
            "APPLE_PASS_KEY", "APPLE_PASS_KEY_PASSWORD", "APPLE_WWDR_CERT", "APNS_URL", "APNS_CA_FILE",
            "GOOGLE_WALLET_ISSUER_ID", "GOOGLE_SERVICE_ACCOUNT_FILE", "GOOGLE_WALLET_API_URL",
            "WALLET_RETRY_BASE_SECONDS", "WALLET_RETRY_MAX_SECONDS")
    env.update({k: str(app.config[k]) for k in keys if app.config.get(k) is not None})
    env["DATABASE_URL"] = database_url
    env["LOG_LEVEL"] = "WARNING"
    return env


class _Worker:
    """A worker process whose log is read as it comes (a full pipe would stall it), noting its "started" line."""

    def __init__(self, command: list[str], env: dict):
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.started = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)
            if "wallet worker" in line and "started" in line:
                self.started.set()

    def output(self) -> str:
        return "".join(self.lines)[-3000:]


def test_two_worker_processes_deliver_each_change_once_and_stop_on_sigterm(shop, app, apns, database_url,
                                                                          factories):
    cards = [shop.stamp_card] + [factories.card(shop.stamps) for _ in range(5)]
    for i, card in enumerate(cards):
        db.session.add(AppleDeviceRegistration(device_library_id=f"phone-{i}", push_token=PUSH_TOKENS[i % 4],
                                               pass_type_id=PTID, serial_number=card.apple_serial))
    db.session.commit()
    from portal.services.wallet.worker import WalletWorker

    WalletWorker(app).run_once()  # the enrolments: now one stamp per card is the only change
    apns.clear()

    env = _env(app, database_url)
    env["LOG_LEVEL"] = "INFO"  # the workers' "started" and "stopped" lines
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "loyalty", "wallet-worker", "--batch", "2",
               "--idle-sleep", "0.1"]
    workers = [_Worker(command, env) for _ in range(2)]
    try:
        for card in cards:  # stamps while both workers poll
            r = shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
            assert r.status_code == 201, r.json
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.session.rollback()
            left = db.session.scalar(db.select(db.func.count()).select_from(WalletOutbox)
                                     .where(WalletOutbox.delivered_at.is_(None)))
            if left == 0:
                break
            time.sleep(0.1)
        assert left == 0
        for worker in workers:  # SIGTERM before its handler is installed would be a plain kill, not a stop
            assert worker.started.wait(60), worker.output()
    finally:
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.process.wait(timeout=30)
            worker.reader.join(timeout=10)
            worker.process.stderr.close()
    for worker in workers:
        assert worker.process.returncode == 0, worker.output()
        assert "stopped" in worker.output(), worker.output()

    db.session.rollback()
    delivered_by = Counter(r.claimed_by for r in db.session.scalars(db.select(WalletOutbox)))
    # One push per stamped card's device: no change was sent twice, none was lost.
    pushes = Counter(p.token for p in apns.pushes if p.status == 200)
    expected = Counter(PUSH_TOKENS[i % 4] for i in range(len(cards)))
    assert pushes == expected, (pushes, delivered_by)
    assert all(c.google_object_id for c in db.session.scalars(db.select(LoyaltyCard)))

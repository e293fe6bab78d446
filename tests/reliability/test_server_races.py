"""Races over a real server: gunicorn with 4 workers on the test's database, many client threads at once.

Every rule holds (one stamp per cooldown, the daily limit, one redemption per reward, the PIN lockout, one card
per e-mail, one transaction per Idempotency-Key); the losers get their documented 4xx, never a 5xx.
"""
from __future__ import annotations

from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction
from portal.services import ledger

from .server import Gunicorn, parallel

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def server(app, database_url, tmp_path):
    with Gunicorn(database_url, tmp_path, workers=4) as srv:
        yield srv
        log = srv.log()
    assert "Traceback" not in log, log[-4000:]


def _post(url, key, body=None, headers=None):
    def call():
        with httpx.Client(timeout=60) as c:
            r = c.post(url, json=body or {}, headers={"Authorization": f"Bearer {key}", **(headers or {})})
            return r.status_code, (r.json().get("error") or {}).get("code") if r.status_code >= 400 else None
    return call


def _stamp_url(server, card):
    return f"{server.url}/api/v1/vendor/loyalty/cards/{card.card_number}/stamps"


def _fresh(card) -> LoyaltyCard:
    db.session.rollback()
    return db.session.get(LoyaltyCard, card.id, populate_existing=True)


def _ledger_ok():
    db.session.rollback()
    report = ledger.verify()
    assert report.ok, report.problems[:5]


def test_concurrent_stamps_keep_daily_limit(server, factories):
    vendor = factories.vendor()
    program = factories.program(vendor, cooldown_minutes=0, daily_stamp_limit=5)
    card = factories.card(program)
    key = factories.api_key(vendor)
    results = Counter(parallel([_post(_stamp_url(server, card), key, {"count": 1})] * 24))
    assert results == {(201, None): 5, (429, "daily_limit_reached"): 19}, results
    assert _fresh(card).stamps == 5
    _ledger_ok()


def test_concurrent_stamps_keep_cooldown(server, factories):
    vendor = factories.vendor()
    program = factories.program(vendor, cooldown_minutes=30, daily_stamp_limit=0)
    card = factories.card(program)
    key = factories.api_key(vendor)
    results = Counter(parallel([_post(_stamp_url(server, card), key, {"count": 1})] * 20))
    assert results == {(201, None): 1, (429, "cooldown_active"): 19}, results
    assert _fresh(card).stamps == 1
    _ledger_ok()


def test_concurrent_redemptions_redeem_once(server, factories):
    vendor = factories.vendor()
    program = factories.program(vendor, cooldown_minutes=0, daily_stamp_limit=0, stamps_required=10)
    card = factories.card(program)
    key = factories.api_key(vendor)
    for _ in range(2):
        assert _post(_stamp_url(server, card), key, {"count": 7})()[0] == 201  # 14 stamps: one reward
    url = f"{server.url}/api/v1/vendor/loyalty/cards/{card.card_number}/stamps/redeem"
    results = Counter(parallel([_post(url, key)] * 16))
    assert results == {(201, None): 1, (409, "insufficient_balance"): 15}, results
    fresh = _fresh(card)
    assert (fresh.stamps, fresh.rewards_redeemed) == (4, 1)
    _ledger_ok()


def test_concurrent_pin_failures_lock_after_max_attempts(server, factories):
    vendor = factories.vendor()
    program = factories.program(vendor, require_pin=True, cooldown_minutes=0, daily_stamp_limit=0,
                                pin_max_attempts=5, pin_lockout_minutes=15)
    pin = factories.pin(program, "2468")
    card = factories.card(program)
    key = factories.api_key(vendor)
    results = Counter(parallel([_post(_stamp_url(server, card), key, {"count": 1, "staff_pin": "1111"})] * 20))
    assert results == {(403, "pin_invalid"): 5, (423, "pin_locked"): 15}, results
    # Locked: even the right PIN is refused, and nothing was stamped.
    assert _post(_stamp_url(server, card), key, {"count": 1, "staff_pin": pin.plain_pin})() == (423, "pin_locked")
    assert _fresh(card).stamps == 0
    _ledger_ok()


def test_concurrent_right_pins_all_stamp(server, factories):
    vendor = factories.vendor()
    program = factories.program(vendor, require_pin=True, cooldown_minutes=0, daily_stamp_limit=0)
    pin = factories.pin(program, "1357")
    cards = [factories.card(program) for _ in range(12)]
    key = factories.api_key(vendor)
    results = Counter(parallel([_post(_stamp_url(server, c), key, {"count": 2, "staff_pin": pin.plain_pin})
                                for c in cards]))
    assert results == {(201, None): 12}, results
    assert all(_fresh(c).stamps == 2 for c in cards)
    _ledger_ok()


def test_concurrent_enrolments_make_one_card(server, factories):
    vendor = factories.vendor()
    program = factories.program(vendor)
    url = f"{server.url}/api/v1/loyalty/programs/{program.slug}/enroll"

    def enrol():
        with httpx.Client(timeout=60) as c:
            r = c.post(url, json={"name": "Same Person", "email": "same.person@example.com",
                                   "consent": True})
            return r.status_code, r.json().get("card_number") if r.status_code == 201 else None

    results = parallel([enrol] * 12)
    statuses = Counter(s for s, _ in results)
    assert set(statuses) <= {201, 202, 429}, statuses  # 429: the enrolment rate limit, per worker
    assert statuses[201] == 1, statuses
    assert len({n for s, n in results if s == 201}) == 1
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(LoyaltyCard)
                             .where(LoyaltyCard.program_id == program.id)) == 1


def test_concurrent_same_idempotency_key_one_transaction(server, factories):
    vendor = factories.vendor()
    program = factories.program(vendor, cooldown_minutes=0, daily_stamp_limit=0)
    card = factories.card(program)
    key = factories.api_key(vendor)
    call = _post(_stamp_url(server, card), key, {"count": 1}, {"Idempotency-Key": "till-7-sale-1"})
    results = Counter(parallel([call] * 16))
    assert set(results) <= {(201, None), (409, "conflict")}, results  # 409: "still being processed"
    assert results[(201, None)] >= 1
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(LoyaltyTransaction)
                             .where(LoyaltyTransaction.card_id == card.id)) == 1
    assert _fresh(card).stamps == 1
    _ledger_ok()

"""50-way races through the real WSGI server with real threads, on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest
from support import IS_PG, rewards_of

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction

V = "/api/v1/vendor/loyalty"
N = 50


def race(url: str, n: int, *, json=None, headers=None, bodies=None) -> list[httpx.Response]:
    db.session.rollback()  # hold no snapshot or lock while the server works
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            results[i] = http.post(url, json=bodies[i] if bodies else json, headers=headers)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert all(r is not None for r in results), "a request did not finish"
    return results


def codes(responses) -> Counter:
    return Counter((r.status_code, r.json().get("error", {}).get("code") if r.status_code >= 400 else "ok")
                   for r in responses)


def count_cards(program_id: int, email: str) -> int:
    db.session.rollback()
    return db.session.query(LoyaltyCard).filter_by(program_id=program_id, customer_email=email).count()


def count_transactions(card_id: int) -> int:
    db.session.rollback()
    return db.session.query(LoyaltyTransaction).filter_by(card_id=card_id).count()


@pytest.mark.slow
def test_50_simultaneous_stamps_give_exactly_one(shop, live_server):
    auth = {"Authorization": f"Bearer {shop.key}"}
    url = f"{live_server.url}{V}/cards/{shop.stamp_card.card_number}/stamps"
    results = race(url, N, json={"staff_pin": "4321"}, headers=auth)
    assert codes(results) == Counter({(201, "ok"): 1, (429, "cooldown_active"): N - 1})
    db.session.rollback()
    assert db.session.get(LoyaltyCard, shop.stamp_card.id).stamps == 1
    assert count_transactions(shop.stamp_card.id) == 1


@pytest.mark.slow
def test_50_simultaneous_redemptions_give_exactly_one(shop, live_server):
    shop.stamps.cooldown_minutes = 0
    shop.stamps.daily_stamp_limit = 0
    db.session.commit()
    auth = {"Authorization": f"Bearer {shop.key}"}
    card_url = f"{live_server.url}{V}/cards/{shop.stamp_card.card_number}"
    assert httpx.post(card_url + "/stamps", json={"staff_pin": "4321", "count": 15}, headers=auth).status_code == 201
    results = race(card_url + "/stamps/redeem", N, json={"staff_pin": "4321"}, headers=auth)
    assert codes(results) == Counter({(201, "ok"): 1, (409, "insufficient_balance"): N - 1})
    db.session.rollback()
    assert db.session.get(LoyaltyCard, shop.stamp_card.id).stamps == 5


@pytest.mark.slow
def test_50_simultaneous_points_redemptions_give_exactly_one(shop, live_server):
    auth = {"Authorization": f"Bearer {shop.key}"}
    reward = rewards_of(shop.points)[0]
    card_url = f"{live_server.url}{V}/cards/{shop.points_card.card_number}/points"
    assert httpx.post(card_url, json={"points": reward.points_cost}, headers=auth).status_code == 201
    results = race(card_url + "/redeem", N, json={"reward_id": reward.id}, headers=auth)
    assert codes(results) == Counter({(201, "ok"): 1, (409, "insufficient_balance"): N - 1})


@pytest.mark.slow
def test_50_simultaneous_wrong_pins_lock_after_exactly_max_attempts(shop, live_server):
    auth = {"Authorization": f"Bearer {shop.key}"}
    url = f"{live_server.url}{V}/cards/{shop.stamp_card.card_number}/stamps"
    max_attempts = shop.stamps.pin_max_attempts
    results = race(url, N, json={"staff_pin": "0000"}, headers=auth)
    assert codes(results) == Counter({(403, "pin_invalid"): max_attempts, (423, "pin_locked"): N - max_attempts})
    left = sorted(r.json()["error"]["attempts_left"] for r in results if r.status_code == 403)
    assert left == list(range(max_attempts))  # 4, 3, 2, 1, 0 — each failure counted once
    assert httpx.post(url, json={"staff_pin": "4321"}, headers=auth).status_code == 423


@pytest.mark.slow
def test_50_simultaneous_enrolments_make_one_card(shop, live_server):
    url = f"{live_server.url}/api/v1/loyalty/programs/{shop.stamps.slug}/enroll"
    results = race(url, N, json={"name": "Twin", "email": "twin@example.lu", "consent": True})
    statuses = Counter(r.status_code for r in results)
    assert statuses == Counter({201: 1, 202: N - 1})
    assert {r.json()["status"] for r in results if r.status_code == 202} == {"link_sent"}
    assert count_cards(shop.stamps.id, "twin@example.lu") == 1


@pytest.mark.slow
def test_50_simultaneous_replays_of_one_idempotency_key(shop, live_server):
    shop.stamps.cooldown_minutes = 0
    shop.stamps.daily_stamp_limit = 0
    db.session.commit()
    headers = {"Authorization": f"Bearer {shop.key}", "Idempotency-Key": "tap-42"}
    url = f"{live_server.url}{V}/cards/{shop.stamp_card.card_number}/stamps"
    results = race(url, N, json={"staff_pin": "4321"}, headers=headers)
    assert {r.status_code for r in results} <= {201, 409}, codes(results)
    assert any(r.status_code == 201 for r in results), [r.json() for r in results][:3]
    ok = [r for r in results if r.status_code == 201]
    assert len({r.json()["transaction"]["id"] for r in ok}) == 1
    assert count_transactions(shop.stamp_card.id) == 1


@pytest.mark.skipif(IS_PG,
                    reason="SQLite's one database-wide write lock")
def test_sqlite_write_lock_is_taken_by_the_unit_of_work_not_by_authentication(app, shop, live_server):
    """A writing request reads its API key before its unit of work, outside the write lock: while another
    connection holds the lock, a request with a bad key is refused at once instead of queueing behind the writer
    (it used to wait for the lock: 30 s of busy timeout), and a valid stamp waits for the lock, then goes through."""
    import sqlite3
    import time

    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    db.session.rollback()
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    holder.execute("BEGIN IMMEDIATE")
    url = f"{live_server.url}{V}/cards/{shop.stamp_card.card_number}/stamps"
    results = {}

    def post(name, key):
        with httpx.Client(timeout=60) as http:
            results[name] = http.post(url, json={"staff_pin": "4321"}, headers={"Authorization": f"Bearer {key}"})

    try:
        bad = threading.Thread(target=post, args=("bad", "not-a-key"))
        bad.start()
        bad.join(timeout=5)
        assert not bad.is_alive(), "the bad key waited for the write lock"
        assert results["bad"].status_code == 401
        good = threading.Thread(target=post, args=("good", shop.key))
        good.start()
        time.sleep(0.5)
        assert good.is_alive(), "the stamp did not wait for the write lock"
    finally:
        holder.execute("COMMIT")
        holder.close()
    good.join(timeout=30)
    assert results["good"].status_code == 201, results["good"].text
    assert results["good"].json()["card"]["stamps"] == 1

"""Every rule of the loyalty core and its error code, through the JSON API (the HTML pages call the same services)."""
from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from portal.extensions import db
from portal.models import LoyaltyCard
from support import rewards_of

V = "/api/v1/vendor/loyalty"
UTC = dt.timezone.utc


def stamp(shop, card=None, **body):
    body.setdefault("staff_pin", "4321")
    return shop.api.post(f"{V}/cards/{(card or shop.stamp_card).card_number}/stamps", json=body)


def fresh_card(factories, program):
    return factories.card(program)


# --- stamps --------------------------------------------------------------------------------------------------------

def test_stamp_adds_and_reward_becomes_available(shop, factories):
    shop.stamps.cooldown_minutes = 0
    shop.stamps.daily_stamp_limit = 0
    db.session.commit()
    r = stamp(shop, count=9)
    assert r.status_code == 201
    assert r.json["card"]["stamps"] == 9 and r.json["card"]["reward_available"] is False
    r = stamp(shop)
    assert r.json["card"]["stamps"] == 10 and r.json["card"]["reward_available"] is True
    assert r.json["transaction"]["type"] == "stamp_add" and r.json["transaction"]["balance_after"] == 10


def test_redeem_consumes_required_and_carries_over(shop):
    shop.stamps.cooldown_minutes = 0
    shop.stamps.daily_stamp_limit = 0
    db.session.commit()
    stamp(shop, count=12)
    r = shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps/redeem", json={"staff_pin": "4321"})
    assert r.status_code == 201, r.json
    assert r.json["card"]["stamps"] == 2
    assert r.json["transaction"]["delta"] == -10
    assert r.json["card"]["rewards_redeemed"] == 1


def test_redeem_without_enough_stamps_is_409(shop):
    stamp(shop)
    r = shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps/redeem", json={"staff_pin": "4321"})
    assert r.status_code == 409
    assert r.json["error"]["code"] == "insufficient_balance"


@pytest.mark.parametrize("count", [0, -1, 101, "two", 1.5, True, None])
def test_stamp_count_validated(shop, count):
    r = stamp(shop, count=count) if count is not None else stamp(shop, count="")
    if count is None:  # empty → default of 1
        assert r.status_code == 201
        return
    assert r.status_code == 422
    assert r.json["error"]["code"] == "validation_error"
    assert "count" in r.json["error"]["fields"]


def test_stamp_on_points_card_is_refused(shop):
    r = shop.api.post(f"{V}/cards/{shop.points_card.card_number}/stamps", json={})
    assert r.status_code == 422
    assert r.json["error"]["code"] == "validation_error"


# --- PIN ------------------------------------------------------------------------------------------------------------

def test_pin_required(shop):
    r = shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps", json={})
    assert r.status_code == 403
    assert r.json["error"]["code"] == "pin_required"


def test_pin_invalid_counts_down_then_locks(shop):
    shop.stamps.pin_max_attempts = 3
    shop.stamps.pin_lockout_minutes = 10
    db.session.commit()
    first = stamp(shop, staff_pin="0000")
    assert first.status_code == 403 and first.json["error"]["code"] == "pin_invalid"
    assert first.json["error"]["attempts_left"] == 2
    assert stamp(shop, staff_pin="0001").json["error"]["attempts_left"] == 1
    last = stamp(shop, staff_pin="0002")
    assert last.status_code == 403 and last.json["error"]["attempts_left"] == 0
    assert last.json["error"]["retry_after"] > 0
    locked = stamp(shop)  # even the right PIN is refused while locked
    assert locked.status_code == 423
    assert locked.json["error"]["code"] == "pin_locked"
    assert 0 < int(locked.headers["Retry-After"]) <= 600
    assert locked.json["error"]["available_at"]


def test_lockout_is_per_client(shop, factories, make_api):
    shop.stamps.pin_max_attempts = 2
    db.session.commit()
    stamp(shop, staff_pin="0000")
    stamp(shop, staff_pin="0000")
    assert stamp(shop).status_code == 423
    other_till = make_api(factories.api_key(shop.vendor))
    r = other_till.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps", json={"staff_pin": "4321"})
    assert r.status_code == 201


def test_lockout_expires_and_owner_can_unlock(shop):
    shop.stamps.pin_max_attempts = 1
    shop.stamps.pin_lockout_minutes = 15
    shop.stamps.cooldown_minutes = 0
    db.session.commit()
    start = dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        assert stamp(shop, staff_pin="9999").status_code == 403
        assert stamp(shop).status_code == 423
        traveller.shift(dt.timedelta(minutes=16))
        assert stamp(shop).status_code == 201
        assert stamp(shop, staff_pin="9999").status_code == 403
        assert stamp(shop).status_code == 423
        r = shop.api.post(f"{V}/pins/{shop.pin.id}/unlock")
        assert r.status_code == 200
        assert stamp(shop).status_code == 201


def test_right_pin_resets_failed_count(shop):
    shop.stamps.pin_max_attempts = 3
    shop.stamps.cooldown_minutes = 0
    db.session.commit()
    stamp(shop, staff_pin="0000")
    stamp(shop, staff_pin="0000")
    assert stamp(shop).status_code == 201
    assert stamp(shop, staff_pin="0000").json["error"]["attempts_left"] == 2


@pytest.mark.parametrize("refusal", ["cooldown_active", "daily_limit_reached", "insufficient_balance"])
def test_a_right_pin_on_a_refused_operation_forgives_nothing(shop, refusal):
    """Alternating wrong PINs with one known PIN on a card that refuses the operation used to reset the counter at
    every right PIN: a staff member could guess colleagues' PINs without limit. Only a done operation forgives."""
    shop.stamps.pin_max_attempts = 5
    shop.stamps.pin_lockout_minutes = 15
    shop.stamps.cooldown_minutes = 15 if refusal == "cooldown_active" else 0
    shop.stamps.daily_stamp_limit = 1 if refusal == "daily_limit_reached" else 0
    db.session.commit()
    if refusal == "insufficient_balance":
        def known_pin():
            return shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps/redeem", json={"staff_pin": "4321"})
    else:
        assert stamp(shop).status_code == 201  # the card now refuses the next stamp

        def known_pin():
            return stamp(shop)
    for attempt in range(1, 5):
        wrong = stamp(shop, staff_pin=f"{attempt:04d}")
        assert wrong.status_code == 403 and wrong.json["error"]["attempts_left"] == 5 - attempt
        refused = known_pin()
        assert refused.json["error"]["code"] == refusal, refused.json
    last = stamp(shop, staff_pin="0005")
    assert last.status_code == 403 and last.json["error"]["attempts_left"] == 0
    locked = known_pin()
    assert locked.status_code == 423 and locked.json["error"]["code"] == "pin_locked"
    assert stamp(shop, staff_pin="0006").status_code == 423


def test_no_pin_needed_when_program_does_not_require_it(shop, factories):
    program = factories.program(shop.vendor, require_pin=False)
    card = factories.card(program)
    r = shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={})
    assert r.status_code == 201
    assert r.json["transaction"]["staff_name"]  # attributed to the API key


def test_pin_unique_per_program(shop):
    r = shop.api.post(f"{V}/pins", json={"program_id": shop.stamps.id, "staff_name": "Tom", "pin": "4321"})
    assert r.status_code == 422
    assert "pin" in r.json["error"]["fields"]
    r = shop.api.post(f"{V}/pins", json={"program_id": shop.stamps.id, "staff_name": "Tom", "pin": "5555"})
    assert r.status_code == 201 and r.json["pin"] == "5555"
    assert stamp(shop, staff_pin="5555").json["transaction"]["staff_name"] == "Tom"


def test_generated_pin_is_shown_once_and_works(shop):
    r = shop.api.post(f"{V}/pins", json={"program_id": shop.stamps.id, "staff_name": "Lea"})
    assert r.status_code == 201
    pin = r.json["pin"]
    assert pin.isdigit() and len(pin) >= 4
    listing = shop.api.get(f"{V}/pins").json["pins"]
    assert all("pin" not in p for p in listing)
    assert stamp(shop, staff_pin=pin).json["transaction"]["staff_name"] == "Lea"


def test_deleted_pin_stops_working(shop):
    assert shop.api.delete(f"{V}/pins/{shop.pin.id}").status_code == 204
    assert stamp(shop).json["error"]["code"] == "pin_invalid"


def test_pins_stored_only_as_keyed_hashes(shop):
    from portal.models import StaffPin

    row = db.session.get(StaffPin, shop.pin.id)
    assert "4321" not in row.pin_lookup and "4321" not in row.pin_hash
    assert row.pin_hash.startswith("$2")


# --- cooldown and daily limit ----------------------------------------------------------------------------------------

def test_cooldown(shop):
    start = dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        assert stamp(shop).status_code == 201
        traveller.shift(dt.timedelta(minutes=14, seconds=59))
        r = stamp(shop)
        assert r.status_code == 429
        assert r.json["error"]["code"] == "cooldown_active"
        assert r.json["error"]["retry_after"] == 1
        assert r.headers["Retry-After"] == "1"
        assert r.json["error"]["available_at"].startswith("2026-06-01T10:15:00")
        # "Next stamp possible at 12:15" in Luxembourg time (UTC+2 in June)
        assert "12:15" in r.json["error"]["message"]
        traveller.shift(dt.timedelta(seconds=1))
        assert stamp(shop).status_code == 201


def test_cooldown_message_in_french(shop):
    with time_machine.travel(dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC), tick=False):
        stamp(shop)
        r = shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps", json={"staff_pin": "4321"},
                          headers={"Accept-Language": "fr-LU"})
    assert r.json["error"]["code"] == "cooldown_active"
    assert "12:15" in r.json["error"]["message"]


def test_daily_limit_in_vendor_timezone(shop):
    shop.stamps.cooldown_minutes = 0
    shop.stamps.daily_stamp_limit = 5
    db.session.commit()
    # 23:30 in Luxembourg (UTC+1 in January) is 22:30 UTC.
    late = dt.datetime(2026, 1, 15, 22, 30, tzinfo=UTC)
    with time_machine.travel(late, tick=False) as traveller:
        assert stamp(shop, count=4).status_code == 201
        assert stamp(shop).status_code == 201
        r = stamp(shop)
        assert r.status_code == 429
        assert r.json["error"]["code"] == "daily_limit_reached"
        assert r.json["error"]["retry_after"] == 30 * 60  # local midnight, not UTC midnight
        traveller.shift(dt.timedelta(minutes=31))  # 00:01 local, still 23:01 UTC
        assert stamp(shop).status_code == 201


def test_daily_limit_counts_requested_stamps(shop):
    shop.stamps.cooldown_minutes = 0
    db.session.commit()
    assert stamp(shop, count=3).status_code == 201
    r = stamp(shop, count=3)
    assert r.status_code == 429 and r.json["error"]["code"] == "daily_limit_reached"
    assert stamp(shop, count=2).status_code == 201


def test_refusals_are_logged_for_the_dashboard(shop):
    stamp(shop)
    stamp(shop)  # cooldown
    stamp(shop, staff_pin="0000")  # wrong PIN
    stats = shop.api.get(f"{V}/stats").json
    assert stats["refusals"]["cooldown_active"] == 1
    assert stats["refusals"]["pin_invalid"] == 1
    assert stats["totals"]["stamps_issued"] == 1


# --- points ----------------------------------------------------------------------------------------------------------

def test_points_from_amount_use_decimal_and_floor(shop):
    shop.points.points_per_unit = "1.50"
    db.session.commit()
    r = shop.api.post(f"{V}/cards/{shop.points_card.card_number}/points", json={"amount": "12.50"})
    assert r.status_code == 201, r.json
    assert r.json["transaction"]["delta"] == 18  # 18.75 floored
    assert r.json["transaction"]["amount"] == "12.50"
    r = shop.api.post(f"{V}/cards/{shop.points_card.card_number}/points", json={"points": 10})
    assert r.json["card"]["points"] == 28


@pytest.mark.parametrize("body,field", [
    ({}, "amount"), ({"amount": "12.5.0"}, "amount"), ({"amount": "-1"}, "amount"), ({"amount": "0.001"}, "amount"),
    ({"amount": "1", "points": 3}, "amount"), ({"points": 0}, "points"), ({"amount": "NaN"}, "amount"),
    ({"amount": "1e400"}, "amount"), ({"points": 10**30}, "points"),
])
def test_points_input_validated(shop, body, field):
    r = shop.api.post(f"{V}/cards/{shop.points_card.card_number}/points", json=body)
    assert r.status_code == 422, r.json
    assert field in r.json["error"]["fields"]


def test_redeem_catalog_reward_never_negative(shop):
    reward = rewards_of(shop.points)[0]
    url = f"{V}/cards/{shop.points_card.card_number}/points"
    shop.api.post(url, json={"points": reward.points_cost - 1})
    r = shop.api.post(url + "/redeem", json={"reward_id": reward.id})
    assert r.status_code == 409 and r.json["error"]["code"] == "insufficient_balance"
    shop.api.post(url, json={"points": 1})
    r = shop.api.post(url + "/redeem", json={"reward_id": reward.id})
    assert r.status_code == 201 and r.json["card"]["points"] == 0
    r = shop.api.post(url + "/redeem", json={"reward_id": 999999})
    assert r.status_code == 422 and "reward_id" in r.json["error"]["fields"]


# --- programs ----------------------------------------------------------------------------------------------------------

def test_paused_program_refuses(shop):
    r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json={"active": False})
    assert r.status_code == 200 and r.json["active"] is False
    r = stamp(shop)
    assert r.status_code == 409 and r.json["error"]["code"] == "program_inactive"
    r = shop.api.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll", json={"email": "a@b.lu"})
    assert r.status_code == 409


def test_program_defaults_and_validation(shop):
    r = shop.api.post(f"{V}/programs", json={"type": "stamps", "name": "Tea", "stamps_required": 8,
                                              "reward_text": "Free tea"})
    assert r.status_code == 201, r.json
    body = r.json
    assert (body["cooldown_minutes"], body["daily_stamp_limit"], body["pin_max_attempts"],
            body["pin_lockout_minutes"], body["require_pin"]) == (15, 5, 5, 15, True)
    r = shop.api.post(f"{V}/programs", json={"type": "stamps", "name": "", "stamps_required": 0})
    assert r.status_code == 422
    assert {"name", "stamps_required", "reward_text"} <= set(r.json["error"]["fields"])
    r = shop.api.post(f"{V}/programs", json={"type": "points", "name": "P", "points_per_unit": "1"})
    assert r.status_code == 422 and "rewards" in r.json["error"]["fields"]
    r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json={"type": "points"})
    assert r.status_code == 422


# --- void and adjustments ----------------------------------------------------------------------------------------------

def test_void_reverses_and_cannot_repeat(shop):
    shop.stamps.cooldown_minutes = 0
    db.session.commit()
    tx = stamp(shop, count=2).json["transaction"]
    r = shop.api.post(f"{V}/transactions/{tx['id']}/void", json={"reason": "Wrong card"})
    assert r.status_code == 201, r.json
    assert r.json["card"]["stamps"] == 0
    assert r.json["transaction"]["voided_transaction_id"] == tx["id"]
    assert shop.api.post(f"{V}/transactions/{tx['id']}/void", json={"reason": "again"}).status_code == 409
    void_id = r.json["transaction"]["id"]
    assert shop.api.post(f"{V}/transactions/{void_id}/void", json={"reason": "x"}).status_code == 409
    assert shop.api.post(f"{V}/transactions/{tx['id']}/void", json={}).status_code == 422


def test_void_that_would_go_negative_is_refused(shop):
    shop.stamps.cooldown_minutes = 0
    shop.stamps.daily_stamp_limit = 0
    db.session.commit()
    add = stamp(shop, count=10).json["transaction"]
    shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps/redeem", json={"staff_pin": "4321"})
    r = shop.api.post(f"{V}/transactions/{add['id']}/void", json={"reason": "oops"})
    assert r.status_code == 409 and r.json["error"]["code"] == "insufficient_balance"


def test_adjustment(shop):
    url = f"{V}/cards/{shop.points_card.card_number}/adjustments"
    r = shop.api.post(url, json={"delta": 50, "reason": "Migrated from paper card"})
    assert r.status_code == 201 and r.json["card"]["points"] == 50
    assert shop.api.post(url, json={"delta": -51, "reason": "x"}).json["error"]["code"] == "insufficient_balance"
    assert shop.api.post(url, json={"delta": 0, "reason": "x"}).status_code == 422


# --- the ledger ---------------------------------------------------------------------------------------------------------

def test_database_rejects_update_and_delete_of_transactions(shop):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    stamp(shop)
    for statement in ("UPDATE loyalty_transactions SET delta = 5", "DELETE FROM loyalty_transactions"):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()


def test_balance_equals_ledger_and_chain_verifies(shop, runner):
    shop.stamps.cooldown_minutes = 0
    db.session.commit()
    for _ in range(3):
        stamp(shop)
    result = runner.invoke(args=["loyalty", "verify-ledger", "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    assert report["ok"] and report["transactions_checked"] == 3


def test_verify_ledger_detects_a_tampered_balance(shop, runner):
    stamp(shop)
    card = db.session.get(LoyaltyCard, shop.stamp_card.id)
    card.stamps = 7  # someone edits the balance behind the ledger's back
    db.session.commit()
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 1
    assert "transactions sum to 1" in result.output


def test_pin_for_a_staff_account_of_another_shop_is_refused(shop, factories):
    other = factories.vendor("Elsewhere")
    stranger = factories.user(other, role="staff")
    r = shop.api.post(f"{V}/pins", json={"program_id": shop.stamps.id, "staff_name": "X", "user_id": stranger.id})
    assert r.status_code == 422 and "user_id" in r.json["error"]["fields"]
    mine = factories.user(shop.vendor, role="staff")
    r = shop.api.post(f"{V}/pins", json={"program_id": shop.stamps.id, "staff_name": "X", "user_id": mine.id})
    assert r.status_code == 201 and r.json["user_id"] == mine.id

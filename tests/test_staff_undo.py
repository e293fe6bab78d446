"""Issue 17, item 3: a staff member undoes their own last action within 2 minutes (a ``void`` row with the reason
``undone_by_staff``), through the JSON API; the rules live in ``operations.undo_transaction`` (the tablet calls the
same service: tests/portal/test_portal_undo.py)."""
from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction, PinLockout, WalletOutbox
from portal.services import ledger, operations
from portal.services.accounts import actor_for_user
from tests.support import rewards_of

V = "/api/v1/vendor/loyalty"
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # 11:00 in Luxembourg, a Tuesday


def stamp(shop, card=None, pin="4321", **body):
    if pin is not None:
        body["staff_pin"] = pin
    return shop.api.post(f"{V}/cards/{(card or shop.stamp_card).card_number}/stamps", json=body)


def undo(api, tx_id, pin="4321", headers=None, **body):
    if pin is not None:
        body["staff_pin"] = pin
    return api.post(f"{V}/transactions/{tx_id}/undo", json=body, headers=headers)


def fresh(card):
    db.session.rollback()
    return db.session.get(LoyaltyCard, card.id)


def outbox_rows(card):
    return db.session.scalar(select(func.count()).select_from(WalletOutbox).where(WalletOutbox.card_id == card.id))


def test_undo_within_two_minutes_reverses_the_stamp(shop):
    with time_machine.travel(T0, tick=False) as traveller:
        r = stamp(shop, count=2)
        assert r.status_code == 201, r.json
        tx_id = r.json["transaction"]["id"]
        before_outbox = outbox_rows(shop.stamp_card)
        traveller.shift(dt.timedelta(minutes=1, seconds=59))
        r = undo(shop.api, tx_id)
        assert r.status_code == 201, r.json
    body = r.json
    assert body["transaction"]["type"] == "void"
    assert body["transaction"]["voided_transaction_id"] == tx_id
    assert body["transaction"]["delta"] == -2
    assert body["transaction"]["note"] == "undone_by_staff"  # the stable code, in the data
    assert body["transaction"]["staff_name"] == "Anna"
    assert body["card"]["stamps"] == 0 and body["card"]["lifetime_stamps"] == 0
    card = fresh(shop.stamp_card)
    assert card.stamps == 0 and card.last_stamp_at is None
    assert outbox_rows(card) == before_outbox + 1  # the pass updates
    assert ledger.verify().ok


def test_undo_after_two_minutes_is_refused_with_when(shop):
    with time_machine.travel(T0, tick=False) as traveller:
        tx_id = stamp(shop).json["transaction"]["id"]
        traveller.shift(dt.timedelta(minutes=2, seconds=1))
        r = undo(shop.api, tx_id)
    assert r.status_code == 409
    assert r.json["error"]["code"] == "undo_window_passed"
    assert "11:02" in r.json["error"]["message"], r.json  # until when it was possible, in the shop's time
    assert fresh(shop.stamp_card).stamps == 1


def test_undo_refused_message_in_french(shop):
    with time_machine.travel(T0, tick=False) as traveller:
        tx_id = stamp(shop).json["transaction"]["id"]
        traveller.shift(dt.timedelta(minutes=5))
        r = undo(shop.api, tx_id, headers={"Accept-Language": "fr"})
    assert r.json["error"]["code"] == "undo_window_passed"
    assert r.json["error"]["message"].startswith("Trop tard"), r.json


def test_only_the_staff_member_who_did_it(shop, factories):
    factories.pin(shop.stamps, "5555", "Ben")
    tx_id = stamp(shop).json["transaction"]["id"]
    r = undo(shop.api, tx_id, pin="5555")
    assert r.status_code == 403 and r.json["error"]["code"] == "undo_not_yours"
    assert fresh(shop.stamp_card).stamps == 1
    assert undo(shop.api, tx_id).status_code == 201


def test_a_pin_action_needs_the_same_pin_even_where_the_program_needs_none(shop, factories):
    shop.stamps.require_pin = False
    db.session.commit()
    tx_id = stamp(shop).json["transaction"]["id"]  # given with Anna's PIN
    r = undo(shop.api, tx_id, pin=None)
    assert r.status_code == 403 and r.json["error"]["code"] == "undo_not_yours"
    assert undo(shop.api, tx_id).status_code == 201


def test_without_pins_the_api_key_is_who_did_it(shop, factories, make_api):
    shop.stamps.require_pin = False
    db.session.commit()
    tx_id = stamp(shop, pin=None).json["transaction"]["id"]
    other = make_api(factories.api_key(shop.vendor))  # another till of the same shop
    r = undo(other, tx_id, pin=None)
    assert r.status_code == 403 and r.json["error"]["code"] == "undo_not_yours"
    assert undo(shop.api, tx_id, pin=None).status_code == 201


def test_only_the_last_action_on_the_card(shop):
    shop.stamps.cooldown_minutes = 0
    db.session.commit()
    first = stamp(shop).json["transaction"]["id"]
    second = stamp(shop).json["transaction"]["id"]
    r = undo(shop.api, first)
    assert r.status_code == 409 and r.json["error"]["code"] == "undo_not_last"
    assert undo(shop.api, second).status_code == 201
    # the earlier one is not "the last" again: the undo itself is now the card's newest row
    r = undo(shop.api, first)
    assert r.json["error"]["code"] == "undo_not_last"
    assert fresh(shop.stamp_card).stamps == 1


def test_refused_when_someone_else_acted_after(shop):
    tx_id = stamp(shop).json["transaction"]["id"]
    shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/adjustments", json={"delta": 3, "reason": "gift"})
    r = undo(shop.api, tx_id)
    assert r.status_code == 409 and r.json["error"]["code"] == "undo_not_last"


def test_only_once(shop):
    tx_id = stamp(shop).json["transaction"]["id"]
    assert undo(shop.api, tx_id).status_code == 201
    r = undo(shop.api, tx_id)
    assert r.status_code == 409 and r.json["error"]["code"] == "undo_already_done"
    assert fresh(shop.stamp_card).stamps == 0


def test_adjustments_and_voids_cannot_be_undone(shop):
    r = shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/adjustments", json={"delta": 3, "reason": "gift"})
    r = undo(shop.api, r.json["transaction"]["id"])
    assert r.status_code == 409 and r.json["error"]["code"] == "undo_not_possible"
    tx_id = stamp(shop).json["transaction"]["id"]
    void_id = undo(shop.api, tx_id).json["transaction"]["id"]
    r = undo(shop.api, void_id)
    assert r.json["error"]["code"] == "undo_not_possible"


def test_idempotency_key_replays_the_undo(shop):
    tx_id = stamp(shop).json["transaction"]["id"]
    headers = {"Idempotency-Key": "undo-key-1"}
    first = undo(shop.api, tx_id, headers=headers)
    second = undo(shop.api, tx_id, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.json == first.json
    voids = db.session.scalar(select(func.count()).select_from(LoyaltyTransaction).where(
        LoyaltyTransaction.voided_transaction_id == tx_id))
    assert voids == 1


def test_pin_rules_apply_as_for_stamps(shop):
    shop.stamps.pin_max_attempts = 2
    db.session.commit()
    tx_id = stamp(shop).json["transaction"]["id"]
    r = undo(shop.api, tx_id, pin=None)
    assert r.status_code == 403 and r.json["error"]["code"] == "pin_required"
    r = undo(shop.api, tx_id, pin="0000")
    assert r.status_code == 403 and r.json["error"]["code"] == "pin_invalid" and r.json["error"]["attempts_left"] == 1
    r = undo(shop.api, tx_id, pin="0001")
    assert r.json["error"]["code"] == "pin_invalid" and r.json["error"]["attempts_left"] == 0
    r = undo(shop.api, tx_id)  # the right PIN, but the pad is locked
    assert r.status_code == 423 and r.json["error"]["code"] == "pin_locked"
    assert db.session.scalar(select(PinLockout.locked_until)) is not None
    assert fresh(shop.stamp_card).stamps == 1


def test_an_undone_stamp_does_not_count_for_cooldown_or_daily_limit(shop):
    shop.stamps.cooldown_minutes = 15
    shop.stamps.daily_stamp_limit = 2
    db.session.commit()
    with time_machine.travel(T0, tick=False) as traveller:
        assert stamp(shop).status_code == 201
        traveller.shift(dt.timedelta(minutes=20))
        second = stamp(shop)
        assert second.status_code == 201
        traveller.shift(dt.timedelta(minutes=1))
        # undone: its cooldown is gone (the one before it ended long ago) and it no longer counts today
        assert undo(shop.api, second.json["transaction"]["id"]).status_code == 201
        card = fresh(shop.stamp_card)
        assert card.last_stamp_at == T0
        again = stamp(shop)
        assert again.status_code == 201, again.json
        traveller.shift(dt.timedelta(minutes=20))
        r = stamp(shop)
        assert r.status_code == 429 and r.json["error"]["code"] == "daily_limit_reached"


def test_daily_count_skips_voided_stamps(shop, factories):
    """The rule's own query: an owner's void counts too (a voided stamp was not given)."""
    shop.stamps.cooldown_minutes = 0
    db.session.commit()
    with time_machine.travel(T0, tick=False):
        tx_id = stamp(shop, count=2).json["transaction"]["id"]
        stamp(shop)
        card = fresh(shop.stamp_card)
        assert operations.stamp_window(card, card.program, T0)[0] == 3
        owner = factories.owner_actor(shop.vendor)
        operations.void_transaction(owner, tx_id, {"reason": "wrong card"})
        db.session.commit()
        card = fresh(shop.stamp_card)
        assert operations.stamp_window(card, card.program, T0)[0] == 1
        assert card.lifetime_stamps == 1


def test_points_and_redemption_undo(shop):
    card = shop.points_card.card_number
    earn = shop.api.post(f"{V}/cards/{card}/points", json={"amount": "30.00", "staff_pin": "4321"})
    assert earn.status_code == 201
    reward = [r for r in rewards_of(shop.points) if r.name == "Croissant"][0]
    redeem = shop.api.post(f"{V}/cards/{card}/points/redeem", json={"reward_id": reward.id, "staff_pin": "4321"})
    assert redeem.json["card"]["points"] == 10 and redeem.json["card"]["rewards_redeemed"] == 1
    r = undo(shop.api, redeem.json["transaction"]["id"])
    assert r.status_code == 201, r.json
    assert r.json["card"]["points"] == 30 and r.json["card"]["rewards_redeemed"] == 0
    assert r.json["transaction"]["delta"] == 20
    # the earn is now behind the undo: no longer the last action
    assert undo(shop.api, earn.json["transaction"]["id"]).json["error"]["code"] == "undo_not_last"


def test_redeemed_stamps_undo(shop):
    shop.stamps.cooldown_minutes = 0
    shop.stamps.daily_stamp_limit = 0
    db.session.commit()
    stamp(shop, count=10)
    r = shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps/redeem", json={"staff_pin": "4321"})
    assert r.json["card"]["stamps"] == 0
    r = undo(shop.api, r.json["transaction"]["id"])
    assert r.status_code == 201 and r.json["card"]["stamps"] == 10 and r.json["card"]["rewards_redeemed"] == 0


def test_another_shops_transaction_is_not_found(shop, factories, make_api):
    tx_id = stamp(shop).json["transaction"]["id"]
    other = make_api(factories.api_key(factories.vendor("Elsewhere")))
    assert undo(other, tx_id).status_code == 404
    assert undo(shop.api, 2**31 + 5).status_code == 404


@pytest.mark.parametrize("body", [{"staff_pin": ["1"]}, {"staff_pin_id": "x"}, {"staff_pin_id": 0}])
def test_bad_input_is_a_clear_error(shop, body):
    tx_id = stamp(shop).json["transaction"]["id"]
    r = shop.api.post(f"{V}/transactions/{tx_id}/undo", json=body)
    assert r.status_code in (400, 422) and r.json["error"]["code"] == "validation_error", r.json


def test_undo_service_for_a_logged_in_staff_member(shop, factories):
    """Without PINs, the staff login is who did it."""
    shop.stamps.require_pin = False
    db.session.commit()
    anna, ben = factories.user(shop.vendor), factories.user(shop.vendor)
    card, tx = operations.add_stamps(actor_for_user(anna), shop.stamp_card.card_number, {})
    db.session.commit()
    from portal.services.errors import UndoNotYours

    with pytest.raises(UndoNotYours):
        operations.undo_transaction(actor_for_user(ben), tx.id, {})
    db.session.rollback()
    card, void = operations.undo_transaction(actor_for_user(anna), tx.id, {})
    assert void.voided_transaction_id == tx.id and card.stamps == 0
    db.session.commit()


def test_responses_match_the_openapi_document(shop, client):
    """The undo's success and refusals, and a pending card's refusal, as documented (tests/test_openapi.py)."""
    import json
    from test_openapi import SPEC_PATH, SpecChecker

    check = SpecChecker(json.loads(SPEC_PATH.read_text()))
    shop.stamps.cooldown_minutes = 0
    db.session.commit()
    first = stamp(shop).json["transaction"]["id"]
    second = stamp(shop).json["transaction"]["id"]
    url = f"{V}/transactions/{first}/undo"
    check(shop.api.post(url, json={"staff_pin": "4321"}), "POST", url, 409)  # undo_not_last
    check(shop.api.post(url, json={}), "POST", url, 409)
    url = f"{V}/transactions/{second}/undo"
    check(shop.api.post(url, json={"staff_pin": "0000"}), "POST", url, 403)  # pin_invalid
    check(shop.api.post(url, json={"staff_pin": "4321"}), "POST", url, 201)
    shop.stamps.pending_signups = True
    db.session.commit()
    url = f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll"
    body = check(client.post(url, json={"email": "spec@example.com", "consent": True}), "POST", url, 201)
    assert body["pending"] is True
    url = f"{V}/cards/{body['card_number']}/stamps"
    refused = check(shop.api.post(url, json={}), "POST", url, 403)
    assert refused["error"]["code"] == "card_pending_confirmation"

"""Editing a program's design (name, colours, logo, reward text, rewards) reaches the passes already in wallets:
one coalesced pending update per card, delivered by the worker through the APNs and Google stand-ins."""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import time_machine

from portal.extensions import db
from portal.models import AppleDeviceRegistration, LoyaltyCard, LoyaltyProgram, WalletOutbox
from portal.services import cards, clock
from portal.services.wallet import images, passes
from portal.services.wallet.worker import WalletWorker
from support import rewards_of

from .conftest import ISSUER, PUSH_TOKENS

pytestmark = pytest.mark.timeout(120)
V = "/api/v1/vendor/loyalty"
A = "/api/v1/loyalty/apple/v1"
PTID = "pass.lu.example.loyalty"


@pytest.fixture
def app_config(wallet_app_config):
    return wallet_app_config


def pending_by_card() -> Counter:
    db.session.rollback()
    rows = db.session.execute(db.select(WalletOutbox.card_id, WalletOutbox.reason)
                              .where(WalletOutbox.delivered_at.is_(None))).all()
    return Counter((card_id, reason) for card_id, reason in rows)


@pytest.fixture
def drained(shop, app, factories):
    """The shop with three more stamp cards and an erased one, every enrolment update delivered."""
    more = [factories.card(shop.stamps) for _ in range(3)]
    erased = factories.card(shop.stamps)
    cards.erase_personal_data(erased)
    db.session.commit()
    WalletWorker(app).run_once()
    assert pending_by_card() == Counter()
    return [shop.stamp_card, *more], erased


def test_a_design_edit_queues_one_pending_update_per_card_even_when_made_twice(shop, drained):
    live, erased = drained
    r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json={"name": "Coffee club", "background_color": "#203040"})
    assert r.status_code == 200, r.json
    r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json={"reward_text": "A free cappuccino"})
    assert r.status_code == 200, r.json
    assert pending_by_card() == Counter({(card.id, "design"): 1 for card in live})  # not the erased card, nor
    # the other program's


@pytest.mark.parametrize("change", [{"cooldown_minutes": 30}, {"daily_stamp_limit": 2}, {"require_pin": False},
                                    {"active": False}, {"name": "Coffee card"}, {"pin_max_attempts": 3}])
def test_rules_and_unchanged_values_queue_nothing(shop, drained, change):
    r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json=change)
    assert r.status_code == 200, r.json
    assert pending_by_card() == Counter()


def test_a_rewards_change_or_a_new_logo_queues_updates(shop, drained, factories, app):
    points_card = shop.points_card
    program = db.session.get(LoyaltyProgram, shop.points.id)
    before = program.updated_at
    rewards = [{"id": r.id, "name": r.name, "points_cost": r.points_cost} for r in rewards_of(program)]
    rewards[0]["name"] = "Two croissants"
    r = shop.api.patch(f"{V}/programs/{shop.points.id}", json={"rewards": rewards})
    assert r.status_code == 200, r.json
    assert pending_by_card() == Counter({(points_card.id, "design"): 1})
    db.session.expire_all()
    assert db.session.get(LoyaltyProgram, shop.points.id).updated_at > before  # the passes' Last-Modified moves

    WalletWorker(app).run_once()
    from portal.services import programs
    from portal.services.accounts import actor_for_user

    db.session.rollback()  # a fresh transaction: the worker has written since this one's snapshot
    logo = images.encode_png_rgba(40, 40, [bytes((1, 2, 3, 255)) * 40] * 40)
    programs.set_logo(actor_for_user(shop.vendor.owner), shop.stamps.id, logo)
    db.session.commit()
    assert set(pending_by_card()) == {(card.id, "design") for card in drained[0]}


def test_the_worker_delivers_a_design_edit_to_apple_and_google(client, shop, drained, app, apns, gstandin):
    card = shop.stamp_card
    auth = {"Authorization": f"ApplePass {card.apple_auth_token}"}
    r = client.post(f"{A}/devices/phone-1/registrations/{PTID}/{card.apple_serial}",
                    json={"pushToken": PUSH_TOKENS[0]}, headers=auth)
    assert r.status_code == 201
    tag = client.get(f"{A}/devices/phone-1/registrations/{PTID}").json["lastUpdated"]
    last_modified = client.get(f"{A}/passes/{PTID}/{card.apple_serial}", headers=auth).headers["Last-Modified"]
    logo_uri = gstandin.classes[f"{ISSUER}.{shop.stamps.slug}"]["programLogo"]["sourceUri"]["uri"]
    apns.clear()
    gstandin.clear_requests()

    with time_machine.travel(clock.now() + dt.timedelta(minutes=5), tick=True):
        r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json={"name": "Coffee club",
                                                                    "background_color": "#203040"})
        assert r.status_code == 200
        result = WalletWorker(app).run_once()
        assert result.delivered == len(drained[0]) and result.failed == 0
        assert [p.token for p in apns.pushes] == [PUSH_TOKENS[0]]  # the one registered device
        klass = gstandin.classes[f"{ISSUER}.{shop.stamps.slug}"]
        assert klass["programName"] == "Coffee club" and klass["hexBackgroundColor"] == "#203040"
        assert klass["programLogo"]["sourceUri"]["uri"] != logo_uri  # Google fetches the logo again
        for each in drained[0]:
            db.session.rollback()
            object_id = db.session.get(LoyaltyCard, each.id).google_object_id
            assert object_id in gstandin.objects
        # The phone asks what changed since its tag, and gets the new pass.
        changed = client.get(f"{A}/devices/phone-1/registrations/{PTID}?passesUpdatedSince={tag}")
        assert changed.status_code == 200 and changed.json["serialNumbers"] == [card.apple_serial]
        fresh = client.get(f"{A}/passes/{PTID}/{card.apple_serial}", headers={**auth,
                                                                             "If-Modified-Since": last_modified})
        assert fresh.status_code == 200
        db.session.rollback()
        body = passes.pass_json(db.session.get(LoyaltyCard, card.id))
        assert body["logoText"] == "Coffee club" and body["backgroundColor"] == "rgb(32,48,64)"
    assert pending_by_card() == Counter()
    assert db.session.scalar(db.select(db.func.count()).select_from(AppleDeviceRegistration)) == 1

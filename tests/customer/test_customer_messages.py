"""Messages to pass holders and nudges (issue 16), through the wallet worker against the APNs and Google stand-ins:
a segment gets the message exactly once (two workers), the quota preview matches what Google records (a 4th
notification in 24 h goes silently), the Apple pass carries it with a changeMessage, nudges, schedules, opt-out."""
from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
import time_machine

from portal.extensions import db
from portal.models import AppleDeviceRegistration, LoyaltyCard, PassMessage, PassMessageDelivery, WalletOutbox
from portal.services import clock, messages
from portal.services.wallet import passes
from portal.services.wallet.worker import WalletWorker

from .conftest import ISSUER

pytestmark = pytest.mark.timeout(180)
V = "/api/v1/vendor/loyalty"
PTID = "pass.lu.example.loyalty"


@pytest.fixture
def app_config(wallet_app_config):
    return wallet_app_config


def register(card, token, device):
    db.session.add(AppleDeviceRegistration(device_library_id=device, push_token=token, pass_type_id=PTID,
                                           serial_number=card.apple_serial))
    db.session.commit()


def set_stamps(card_id, n):
    db.session.rollback()
    db.session.execute(db.update(LoyaltyCard).where(LoyaltyCard.id == card_id).values(stamps=n))
    db.session.commit()


def object_id(card):
    return f"{ISSUER}.{card.apple_serial}"


def add_messages(gstandin):
    return [r for r in gstandin.requests if r.path.endswith("/addMessage")]


@pytest.fixture
def crowd(shop, factories, app):
    """Eight more cards on the stamp program (ten stamps for the reward): two near the reward, the rest not."""
    cards = [factories.card(shop.stamps, locale=("fr" if i % 2 else "de")) for i in range(8)]
    set_stamps(cards[0].id, 8)
    set_stamps(cards[1].id, 9)
    set_stamps(cards[2].id, 7)
    WalletWorker(app).run_once()  # every card's Google object exists (the enrolment rows)
    return cards


def test_a_segment_gets_the_message_exactly_once_with_two_workers(shop, crowd, app, gstandin, apns):
    register(crowd[0], "a1" * 32, "dev-a")
    register(crowd[1], "b2" * 32, "dev-b")
    register(crowd[2], "c3" * 32, "dev-c")  # 7 of 10: not in the segment
    gstandin.clear_requests()
    apns_before = len(apns.pushes)
    r = shop.api.post(f"{V}/messages", json={"program_id": shop.stamps.id, "segment": "near_reward",
                                             "texts": {"en": "Almost there!", "fr": "Presque !"}, "send": True})
    assert r.status_code == 201, r.json
    assert r.json["progress"] == {"recipients": 2, "sent": 0, "pending": 2, "google_notify": 0,
                                  "google_silent": 0, "done": False, "percent": 0}
    workers = [WalletWorker(app, batch=1) for _ in range(2)]
    threads = [threading.Thread(target=w.run_once) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    calls = add_messages(gstandin)
    assert Counter(c.path.split("/")[-2] for c in calls) == {object_id(crowd[0]): 1, object_id(crowd[1]): 1}
    fr = next(c.body["message"] for c in calls if object_id(crowd[1]) in c.path)  # crowd[1] is French
    assert fr["body"] == "Presque !" and fr["messageType"] == "TEXT_AND_NOTIFY"
    assert fr["localizedBody"]["translatedValues"] == [{"language": "en", "value": "Almost there!"}]
    # A message alone adds the message to the object: no PATCH of the object first.
    assert not gstandin.calls("PATCH", "loyaltyObject")
    tokens = Counter(p.token for p in apns.pushes[apns_before:])
    assert tokens == {"a1" * 32: 1, "b2" * 32: 1}
    status = shop.api.get(f"{V}/messages/{r.json['id']}").json
    assert status["progress"]["sent"] == 2 and status["progress"]["done"] is True
    assert status["progress"]["google_notify"] == 2
    # The Apple pass of a recipient carries the message with a changeMessage; another card's pass does not.
    db.session.rollback()
    card = passes.card_for_pass(serial=crowd[1].apple_serial)
    back = passes.pass_json(card)["storeCard"]["backFields"][0]
    assert back == {"key": "message", "label": "Café Test", "value": "Presque !", "changeMessage": "%@"}
    other = passes.pass_json(passes.card_for_pass(serial=crowd[2].apple_serial))["storeCard"]["backFields"][0]
    assert other["key"] != "message"


def test_quota_preview_matches_what_google_records_and_a_fourth_goes_silently(shop, crowd, app, gstandin):
    card = crowd[3]
    body = {"program_id": shop.stamps.id, "segment": "card", "card_number": card.card_number,
            "texts": {"en": "Hello"}}
    modes = []
    for i in range(4):
        preview = shop.api.post(f"{V}/messages/preview", json=body).json
        assert preview["recipients"] == 1
        modes.append("notify" if preview["google_notify"] else "silent")
        sent = shop.api.post(f"{V}/messages", json={**body, "texts": {"en": f"Hello {i}"}, "send": True})
        assert sent.status_code == 201, sent.json
        WalletWorker(app).run_once()
    assert modes == ["notify", "notify", "notify", "silent"]
    recorded = [c.body["message"]["messageType"] for c in add_messages(gstandin)
                if object_id(card) in c.path and c.status == 200]
    assert recorded == ["TEXT_AND_NOTIFY"] * 3 + ["TEXT"]
    assert not [c for c in add_messages(gstandin) if c.status == 429]  # never refused by surprise
    assert len(gstandin.messages(object_id(card))) == 4
    # A day later the pass may notify again.
    with time_machine.travel(clock.now() + dt.timedelta(hours=24, minutes=1)):
        assert shop.api.post(f"{V}/messages/preview", json=body).json["google_notify"] == 1


def test_preview_counts_apple_google_and_no_pass(shop, factories, app, gstandin):
    a = factories.card(shop.stamps)
    register(a, "d4" * 32, "dev-d")
    body = {"program_id": shop.stamps.id, "segment": "all", "texts": {"en": "Hi"}}
    before = shop.api.post(f"{V}/messages/preview", json=body).json
    # Nothing drained yet: no Google object, one Apple registration.
    assert (before["recipients"], before["notify"], before["none"], before["apple"]) == (2, 1, 1, 1)
    WalletWorker(app).run_once()
    after = shop.api.post(f"{V}/messages/preview", json=body).json
    assert (after["notify"], after["none"], after["google_notify"]) == (2, 0, 2)


def test_scheduled_message_goes_out_when_due_in_the_shops_time(shop, app, gstandin):
    WalletWorker(app).run_once()
    with time_machine.travel(dt.datetime(2026, 12, 20, 8, 0, tzinfo=dt.timezone.utc), tick=False):
        r = shop.api.post(f"{V}/messages", json={"program_id": shop.stamps.id, "segment": "all",
                                                 "texts": {"en": "Merry"}, "scheduled_at": "2026-12-24T09:30",
                                                 "send": True})
        assert r.status_code == 201, r.json
        assert r.json["status"] == "scheduled"
        assert r.json["scheduled_at"] == "2026-12-24T08:30:00+00:00"  # Luxembourg is UTC+1 in December
        WalletWorker(app).run_once()
        assert not add_messages(gstandin)
    with time_machine.travel(dt.datetime(2026, 12, 24, 8, 30, 1, tzinfo=dt.timezone.utc), tick=False):
        WalletWorker(app).run_once()
        assert len(add_messages(gstandin)) == 1
        assert shop.api.get(f"{V}/messages/{r.json['id']}").json["progress"]["sent"] == 1


def test_bad_input_is_a_clear_error(shop, factories):
    other = factories.program(factories.vendor())
    cases = [({"segment": "all", "texts": {"en": "x"}}, "program_id"),
             ({"program_id": shop.stamps.id, "segment": "everyone", "texts": {"en": "x"}}, "segment"),
             ({"program_id": shop.stamps.id, "segment": "all", "texts": {}}, "texts"),
             ({"program_id": shop.stamps.id, "segment": "all", "texts": {"xx": "x"}}, "texts"),
             ({"program_id": shop.stamps.id, "segment": "all", "texts": {"en": "x" * 301}}, "texts.en"),
             ({"program_id": shop.stamps.id, "segment": "inactive", "texts": {"en": "x"}}, "days"),
             ({"program_id": shop.stamps.id, "segment": "card", "card_number": "123", "texts": {"en": "x"}},
              "card_number"),
             ({"program_id": shop.stamps.id, "segment": "all", "texts": {"en": "x"}, "scheduled_at": "soon"},
              "scheduled_at"),
             ({"program_id": shop.stamps.id, "segment": "all", "texts": {"en": "x"},
               "scheduled_at": "2001-01-01T10:00"}, "scheduled_at")]
    for body, field in cases:
        r = shop.api.post(f"{V}/messages", json=body)
        assert r.status_code == 422, (body, r.json)
        assert field in r.json["error"]["fields"], (body, r.json)
    assert shop.api.post(f"{V}/messages", json={"program_id": other.id, "segment": "all",
                                                "texts": {"en": "x"}}).status_code == 404


def test_opted_out_cards_get_nothing_and_erased_cards_neither(shop, factories, app, client):
    keep, out = factories.card(shop.stamps), factories.card(shop.stamps)
    page = client.get(f"/c/{out.public_token}")
    from support import csrf_from

    r = client.post(f"/c/{out.public_token}/messages", data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                                             "messages": "off"})
    assert r.status_code == 303
    body = {"program_id": shop.stamps.id, "segment": "all", "texts": {"en": "News"}, "send": True}
    sent = shop.api.post(f"{V}/messages", json=body).json
    assert sent["progress"]["recipients"] == 2  # the shop's first card and ``keep``
    db.session.rollback()
    got = set(db.session.scalars(db.select(PassMessageDelivery.card_id)
                                 .where(PassMessageDelivery.message_id == sent["id"])))
    assert got == {shop.stamp_card.id, keep.id}
    assert "News" in client.get(f"/c/{keep.public_token}").get_data(as_text=True)
    assert "News" not in client.get(f"/c/{out.public_token}").get_data(as_text=True)


def test_one_outbox_row_per_card_even_with_a_balance_update_waiting(shop, factories):
    card = factories.card(shop.stamps)
    db.session.rollback()
    waiting_before = db.session.scalar(db.select(db.func.count()).select_from(WalletOutbox).where(
        WalletOutbox.card_id == card.id, WalletOutbox.delivered_at.is_(None)))
    assert waiting_before == 1  # the enrolment row, not yet claimed
    shop.api.post(f"{V}/messages", json={"program_id": shop.stamps.id, "segment": "all", "texts": {"en": "x"},
                                         "send": True})
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(WalletOutbox).where(
        WalletOutbox.card_id == card.id, WalletOutbox.delivered_at.is_(None))) == 1


def test_nudges_after_stamps_with_a_daily_cap(shop, factories, app, gstandin):
    r = shop.api.put(f"{V}/programs/{shop.stamps.id}/nudges", json={
        "one_to_go": {"on": True, "texts": {"en": "One more stamp!", "de": "Noch ein Stempel!"}, "daily_cap": 1},
        "reward_ready": {"on": True, "texts": {"en": "Your reward is waiting"}, "daily_cap": 1}})
    assert r.status_code == 200, r.json
    assert r.json["one_to_go"]["on"] is True and r.json["miss_you"]["on"] is False
    card = factories.card(shop.stamps, locale="de")
    WalletWorker(app).run_once()
    set_stamps(card.id, 8)
    gstandin.clear_requests()
    url = f"{V}/cards/{card.card_number}/stamps"
    assert shop.api.post(url, json={"staff_pin": "4321"}).status_code == 201  # 9 of 10: one to go
    WalletWorker(app).run_once()
    calls = add_messages(gstandin)
    assert [c.body["message"]["body"] for c in calls] == ["Noch ein Stempel!"]
    with time_machine.travel(clock.now() + dt.timedelta(minutes=20)):
        assert shop.api.post(url, json={"staff_pin": "4321"}).status_code == 201  # 10: reward ready…
        WalletWorker(app).run_once()
    assert len(add_messages(gstandin)) == 1  # …but the daily cap (1) was used today


def test_miss_you_once_per_absence(shop, factories, app, gstandin):
    r = shop.api.put(f"{V}/programs/{shop.stamps.id}/nudges", json={
        "miss_you": {"on": True, "days": 30, "texts": {"en": "We miss you"}}})
    assert r.status_code == 200, r.json
    WalletWorker(app).run_once()
    assert not add_messages(gstandin)
    later = clock.now() + dt.timedelta(days=31)
    with time_machine.travel(later):
        WalletWorker(app).run_once()
        WalletWorker(app).run_once()
    bodies = [c.body["message"]["body"] for c in add_messages(gstandin)]
    assert bodies == ["We miss you"]  # the shop's one stamp card, once


def test_the_messages_api_matches_the_openapi_document(shop, factories, app):
    import json

    from tests.test_openapi import SPEC_PATH, SpecChecker

    check = SpecChecker(json.loads(SPEC_PATH.read_text()))
    api = shop.api
    url = f"{V}/messages/preview"
    check(api.post(url, json={"program_id": shop.stamps.id, "segment": "all", "texts": {"en": "x"}}), "POST", url, 200)
    check(api.post(url, json={"segment": "all"}), "POST", url, 422)
    url = f"{V}/messages"
    draft = check(api.post(url, json={"program_id": shop.stamps.id, "segment": "inactive", "days": 10,
                                      "texts": {"lu": "Moien"}}), "POST", url, 201)
    assert draft["status"] == "draft" and draft["texts"] == {"lb": "Moien"}
    check(api.get(url), "GET", url, 200)
    url = f"{V}/messages/{draft['id']}"
    check(api.get(url), "GET", url, 200)
    check(api.get(f"{V}/messages/999999"), "GET", url, 404)
    url = f"{V}/messages/{draft['id']}/send"
    assert check(api.post(url), "POST", url, 200)["status"] == "sending"
    assert check(api.post(url), "POST", url, 409)["error"]["code"] == "conflict"
    url = f"{V}/programs/{shop.stamps.id}/nudges"
    check(api.get(url), "GET", url, 200)
    check(api.put(url, json={"reward_ready": {"on": True, "texts": {"en": "Ready!"}}}), "PUT", url, 200)
    check(api.put(url, json={"reward_ready": {"on": True, "daily_cap": 0}}), "PUT", url, 422)


def test_a_message_to_a_google_object_deleted_meanwhile_recreates_it(shop, crowd, app, gstandin):
    card = crowd[4]
    with gstandin._lock:  # deleted in Google's console, say
        del gstandin._store["loyaltyObject"][object_id(card)]
    shop.api.post(f"{V}/messages", json={"segment": "card", "card_number": card.card_number,
                                         "texts": {"en": "Back again"}, "send": True})
    WalletWorker(app).run_once()
    assert [m["body"] for m in gstandin.messages(object_id(card))] == ["Back again"]

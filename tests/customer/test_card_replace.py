"""Replacing a card after a lost phone, merging duplicates, and what erasure leaves behind (issues 13 and 14).

Against the APNs and Google stand-ins: the old Apple serial's device is pushed and then fetches a voided pass, the
old Google object is made inactive, the old number is refused with ``card_replaced`` on the API and the tablet,
and the ledger's chains still verify."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from portal.extensions import db
from portal.models import (AppleDeviceRegistration, IdempotencyRecord, LoyaltyCard, LoyaltyTransaction,
                           LoyaltyTransactionNote, RetiredCard)
from portal.services import ledger
from portal.services.wallet.worker import WalletWorker

from support import csrf_from

from .conftest import ISSUER, PUSH_TOKENS

pytestmark = pytest.mark.timeout(90)
V = "/api/v1/vendor/loyalty"
A = "/api/v1/loyalty/apple/v1"
PTID = "pass.lu.example.loyalty"


@pytest.fixture
def app_config(wallet_app_config):
    return wallet_app_config


def fresh(card_id):
    db.session.rollback()
    return db.session.get(LoyaltyCard, card_id)


def stamp(shop, number, **extra):
    r = shop.api.post(f"{V}/cards/{number}/stamps", json={"staff_pin": "4321", **extra})
    assert r.status_code == 201, r.json
    card = db.session.scalar(db.select(LoyaltyCard).where(LoyaltyCard.card_number == number))
    card.last_stamp_at = None  # skip the cooldown for the next stamp
    db.session.commit()
    return r


def register(card, token, device):
    db.session.add(AppleDeviceRegistration(device_library_id=device, push_token=token, pass_type_id=PTID,
                                           serial_number=card.apple_serial))
    db.session.commit()


def pass_json(response) -> dict:
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        return json.loads(archive.read("pass.json"))


def assert_ledger_ok(runner):
    r = runner.invoke(args=["loyalty", "verify-ledger", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ok"] is True


def test_replace_keeps_balance_and_history_and_retires_the_old_identity(client, shop, app, apns, gstandin, runner,
                                                                       factories, login):
    card = shop.stamp_card
    stamp(shop, card.card_number)
    stamp(shop, card.card_number)
    register(card, PUSH_TOKENS[0], "old-phone")
    WalletWorker(app).run_once()  # the Google object of the old identity exists now
    old = {"number": card.card_number, "token": card.public_token, "serial": card.apple_serial,
           "auth": card.apple_auth_token, "object": f"{ISSUER}.{card.apple_serial}"}
    assert gstandin.objects[old["object"]]["state"] == "ACTIVE"
    history_before = [t.hash for t in db.session.scalars(db.select(LoyaltyTransaction)
                                                         .where(LoyaltyTransaction.card_id == card.id))]
    apns.clear()

    r = shop.api.post(f"{V}/cards/{old['number']}/replace", json={"reason": "Phone stolen"})
    assert r.status_code == 201, r.json
    assert r.json["replaced_card_number"] == old["number"]
    new_number = r.json["card"]["card_number"]
    assert new_number != old["number"] and r.json["card"]["stamps"] == 2
    assert old["token"] not in r.json["card"]["card_url"]

    # The same card row: balance, history and chain unchanged; a new identity everywhere.
    replaced = fresh(card.id)
    assert replaced.card_number == new_number and replaced.stamps == 2
    assert {replaced.public_token, replaced.apple_serial, replaced.apple_auth_token}.isdisjoint(old.values())
    assert [t.hash for t in db.session.scalars(db.select(LoyaltyTransaction)
                                               .where(LoyaltyTransaction.card_id == card.id))] == history_before
    audit = db.session.scalar(db.select(RetiredCard).where(RetiredCard.card_number == old["number"]))
    assert audit.reason == "replaced" and audit.successor_card_id == card.id and audit.note == "Phone stolen"
    assert audit.api_key_id is not None and audit.retired_at is not None and not audit.by_customer

    # The old number: refused on the API with its own reason (not 404), on reads and on stamps.
    for response in (shop.api.get(f"{V}/cards/{old['number']}"),
                     shop.api.post(f"{V}/cards/{old['number']}/stamps", json={"staff_pin": "4321"})):
        assert response.status_code == 410 and response.json["error"]["code"] == "card_replaced", response.json
        assert new_number not in response.get_data(as_text=True)  # never tells who holds the old card
    # … and on the tablet.
    staff = factories.user(shop.vendor, role="staff")
    tablet = app.test_client()
    login(staff.email, staff.plain_password, target=tablet)
    page = tablet.get(f"/tablet/card/{old['number']}", headers={"HX-Request": "true"})
    assert page.status_code == 410 and 'data-code="card_replaced"' in page.get_data(as_text=True)
    assert new_number not in page.get_data(as_text=True)
    # The old link is dead; the new one works.
    assert client.get(f"/c/{old['token']}").status_code == 404
    assert client.get(f"/c/{replaced.public_token}").status_code == 200
    # The new number stamps on.
    stamp(shop, new_number)
    assert fresh(card.id).stamps == 3

    # The wallet worker pushes the old serial's device; the device finds its pass changed and gets it voided.
    result = WalletWorker(app).run_once()
    assert result.failed == 0
    assert PUSH_TOKENS[0] in [p.token for p in apns.wait_for(1)]
    changed = client.get(f"{A}/devices/old-phone/registrations/{PTID}")
    assert changed.status_code == 200 and changed.json["serialNumbers"] == [old["serial"]]
    r = client.get(f"{A}/passes/{PTID}/{old['serial']}", headers={"Authorization": f"ApplePass {old['auth']}"})
    assert r.status_code == 200
    voided = pass_json(r)
    assert voided["voided"] is True and voided["serialNumber"] == old["serial"]
    text = json.dumps(voided)
    assert replaced.public_token not in text and new_number not in text and replaced.customer_name not in text
    assert "barcodes" not in voided and "headerFields" not in voided["storeCard"]
    # The old serial's token is still the only key to it.
    r = client.get(f"{A}/passes/{PTID}/{old['serial']}",
                   headers={"Authorization": f"ApplePass {replaced.apple_auth_token}"})
    assert r.status_code == 401
    # Google: the old object inactive and nameless, a new object for the new identity.
    old_object = gstandin.objects[old["object"]]
    assert old_object["state"] == "INACTIVE" and replaced.customer_name not in json.dumps(old_object)
    new_object = gstandin.objects[f"{ISSUER}.{replaced.apple_serial}"]
    assert new_object["state"] == "ACTIVE" and new_object["loyaltyPoints"]["balance"]["int"] == 3
    assert fresh(card.id).google_object_id == f"{ISSUER}.{replaced.apple_serial}"
    assert_ledger_ok(runner)


def test_customer_replaces_from_the_card_page_with_confirmation(client, shop, app, apns):
    card = shop.stamp_card
    token = card.public_token
    page = client.get(f"/c/{token}")
    assert f'href="/c/{token}/replace"' in page.get_data(as_text=True)
    confirm = client.get(f"/c/{token}/replace")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Yes, replace my card" in html
    assert client.post(f"/c/{token}/replace").status_code == 400  # no CSRF token: nothing happens
    assert fresh(card.id).public_token == token
    r = client.post(f"/c/{token}/replace", data={"csrf_token": csrf_from(html)})
    assert r.status_code == 303
    replaced = fresh(card.id)
    assert r.headers["Location"].endswith(f"/c/{replaced.public_token}") and replaced.public_token != token
    landing = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "new number" in landing
    assert client.get(f"/c/{token}").status_code == 404
    assert client.get(f"/c/{token}/replace").status_code == 404
    audit = db.session.scalar(db.select(RetiredCard).where(RetiredCard.card_id == card.id))
    assert audit.by_customer and audit.user_id is None and audit.api_key_id is None


def test_merge_moves_the_balance_and_retires_the_merged_card(client, shop, app, apns, gstandin, runner,
                                                            factories):
    first, second = shop.stamp_card, factories.card(shop.stamps, name="Second Card", email=None,
                                                    phone="+352 621 000 111")
    for _ in range(3):
        stamp(shop, first.card_number)
    for _ in range(2):
        stamp(shop, second.card_number)
    register(first, PUSH_TOKENS[0], "phone-1")
    WalletWorker(app).run_once()
    apns.clear()
    first_number, first_token, first_serial = first.card_number, first.public_token, first.apple_serial
    first_auth, first_email = first.apple_auth_token, first.customer_email
    total = fresh(first.id).stamps + fresh(second.id).stamps

    bad = shop.api.post(f"{V}/cards/{first_number}/merge", json={"into": first_number})
    assert bad.status_code == 422 and "into" in bad.json["error"]["fields"]
    other_program = shop.api.post(f"{V}/cards/{first_number}/merge", json={"into": shop.points_card.card_number})
    assert other_program.status_code == 422 and "into" in other_program.json["error"]["fields"]

    r = shop.api.post(f"{V}/cards/{first_number}/merge", json={"into": second.card_number},
                      headers={"Idempotency-Key": "merge-1"})
    assert r.status_code == 200, r.json
    assert r.json["merged_card_number"] == first_number and r.json["card"]["card_number"] == second.card_number
    assert r.json["card"]["stamps"] == total == 5
    assert [t["delta"] for t in r.json["transactions"]] == [-3, 3]
    # A retry of the same request replays the answer; nothing moves twice.
    again = shop.api.post(f"{V}/cards/{first_number}/merge", json={"into": second.card_number},
                          headers={"Idempotency-Key": "merge-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"

    source, target = fresh(first.id), fresh(second.id)
    assert source.stamps == 0 and target.stamps == 5 and source.stamps + target.stamps == total
    assert target.customer_email == first_email  # the contact the other card lacked
    assert source.customer_email is None and source.erased_at is not None
    audit = db.session.scalar(db.select(RetiredCard).where(RetiredCard.card_number == first_number))
    assert audit.reason == "merged" and audit.successor_card_id == second.id
    assert audit.out_transaction_id and audit.in_transaction_id
    # Retired like a replaced card.
    refused = shop.api.post(f"{V}/cards/{first_number}/stamps", json={"staff_pin": "4321"})
    assert refused.status_code == 410 and refused.json["error"]["code"] == "card_replaced"
    assert client.get(f"/c/{first_token}").status_code == 404
    WalletWorker(app).run_once()
    assert PUSH_TOKENS[0] in [p.token for p in apns.wait_for(1)]
    r = client.get(f"{A}/passes/{PTID}/{first_serial}", headers={"Authorization": f"ApplePass {first_auth}"})
    assert r.status_code == 200 and pass_json(r)["voided"] is True
    assert gstandin.objects[f"{ISSUER}.{first_serial}"]["state"] == "INACTIVE"
    assert gstandin.objects[f"{ISSUER}.{target.apple_serial}"]["loyaltyPoints"]["balance"]["int"] == 5
    # Half of a merge cannot be voided (it would strand a balance on the retired card).
    void = shop.api.post(f"{V}/transactions/{audit.out_transaction_id}/void", json={"reason": "undo"})
    assert void.status_code == 409 and void.json["error"]["code"] == "conflict"
    report = ledger.verify()
    assert report.ok, report.problems
    assert_ledger_ok(runner)


def test_erasure_redacts_stored_responses_and_notes(client, shop, app):
    card = shop.stamp_card
    name, email, phone = "Marie Schmit", "marie.schmit@example.lu", "+352 691 234 567"
    card.customer_name, card.customer_phone, card.customer_email = name, phone, email
    db.session.commit()
    r = shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321", "note": f"for {name}"},
                      headers={"Idempotency-Key": "stamp-1"})
    assert r.status_code == 201 and r.json["card"]["customer"]["email"] == email
    assert r.json["transaction"]["note"] == f"for {name}"
    owner_adjust = shop.api.post(f"{V}/cards/{card.card_number}/adjustments",
                                 json={"delta": 1, "reason": f"{email} paper card"},
                                 headers={"Idempotency-Key": "adjust-1"})
    assert owner_adjust.status_code == 201
    db.session.rollback()
    stored = " ".join(r.response_body for r in db.session.scalars(db.select(IdempotencyRecord)))
    assert name in stored and email in stored and phone in stored  # what erasure must remove
    # The note is not in the hashed ledger row (which cannot be changed), but beside it.
    assert all(not t.note for t in db.session.scalars(db.select(LoyaltyTransaction)))

    token = card.public_token
    page = client.get(f"/c/{token}/delete")
    r = client.post(f"/c/{token}/delete", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 303
    db.session.rollback()
    stored = " ".join(r.response_body for r in db.session.scalars(db.select(IdempotencyRecord)))
    for value in (name, email, phone, "Marie"):
        assert value not in stored
    assert db.session.scalar(db.select(db.func.count()).select_from(LoyaltyTransactionNote)) == 0
    assert all(not t.note for t in db.session.scalars(db.select(LoyaltyTransaction)))
    # A retry with the same key is still answered from the (redacted) copy: nothing is stamped twice.
    replay = shop.api.post(f"{V}/cards/{card.card_number}/stamps",
                           json={"staff_pin": "4321", "note": f"for {name}"}, headers={"Idempotency-Key": "stamp-1"})
    assert replay.headers.get("Idempotent-Replayed") == "true"
    customer = replay.json["card"]["customer"]
    assert (customer["name"], customer["email"], customer["phone"]) == ("", None, None)
    assert replay.json["transaction"]["note"] == ""
    assert ledger.verify().ok

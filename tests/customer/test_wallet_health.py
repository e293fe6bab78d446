"""Pass health and Google's signed save/delete callbacks, against the APNs and Google stand-ins.

The Google stand-in publishes a test root key at /gp/m/issuer/keys and signs callbacks the way Google does
(ECv2SigningOnly); each way a callback can be wrong is refused with its own stable code, never a 500.
"""
from __future__ import annotations

import secrets
import time

import pytest

from portal.extensions import db
from portal.models import GoogleCallbackNonce, LoyaltyCard, PassHealth
from portal.services.wallet import google_objects
from portal.services.wallet.worker import WalletWorker

from .conftest import ISSUER, PUSH_TOKENS

pytestmark = pytest.mark.timeout(90)
V = "/api/v1/vendor/loyalty"
A = "/api/v1/loyalty/apple/v1"
CALLBACK = "/api/v1/loyalty/google/callback"
PTID = "pass.lu.example.loyalty"


@pytest.fixture
def app_config(wallet_app_config, gstandin):
    return {**wallet_app_config, "GOOGLE_CALLBACK_KEYS_URL": gstandin.callback_keys_url}


def auth(card) -> dict:
    return {"Authorization": f"ApplePass {card.apple_auth_token}"}


def register(client, card, token, device="device-A"):
    return client.post(f"{A}/devices/{device}/registrations/{PTID}/{card.apple_serial}",
                       json={"pushToken": token}, headers=auth(card))


def message(card, event="save", *, expires_in_ms=60_000, nonce=None) -> dict:
    return {"classId": f"{ISSUER}.{card.program.slug}", "objectId": f"{ISSUER}.{card.apple_serial}",
            "expTimeMillis": int(time.time() * 1000) + expires_in_ms, "eventType": event,
            "nonce": nonce or secrets.token_hex(16), "count": 1}


def post(client, body: bytes):
    return client.post(CALLBACK, data=body, content_type="application/json")


def health_row(card) -> PassHealth | None:
    db.session.rollback()
    return db.session.get(PassHealth, card.id)


def test_a_good_callback_updates_pass_health_and_the_api_shows_it(client, shop, gstandin):
    card = shop.stamp_card
    r = post(client, gstandin.signed_callback(message(card, "save")))
    assert r.status_code == 200 and r.json == {"status": "accepted"}
    row = health_row(card)
    assert row.google_state == "saved" and row.google_saves == 1 and row.google_deletes == 0
    health = shop.api.get(f"{V}/cards/{card.card_number}/wallet-health").json
    assert health["google"]["state"] == "saved" and health["google"]["saves"] == 1

    r = post(client, gstandin.signed_callback(message(card, "del")))
    assert r.status_code == 200 and r.json == {"status": "accepted"}
    row = health_row(card)
    assert row.google_state == "deleted" and row.google_saves == 1 and row.google_deletes == 1
    summary = shop.api.get(f"{V}/wallet-health").json
    assert summary["google"] == {"holders": 0, "deleted": 1}


def test_a_duplicate_nonce_is_dropped(client, shop, gstandin):
    card = shop.stamp_card
    body = gstandin.signed_callback(message(card, "save", nonce="nonce-1"))
    assert post(client, body).json == {"status": "accepted"}
    again = post(client, body)  # Google delivered it twice
    assert again.status_code == 200 and again.json == {"status": "duplicate", "code": "callback_duplicate"}
    other = post(client, gstandin.signed_callback(message(card, "save", nonce="nonce-1")))  # same nonce, re-signed
    assert other.json["status"] == "duplicate"
    assert health_row(card).google_saves == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(GoogleCallbackNonce)) == 1


@pytest.mark.parametrize("breakage, status, code", [
    ({"tamper": True}, 401, "callback_signature_invalid"),
    ({"root_key": "other"}, 401, "callback_signature_invalid"),
    ({"recipient_id": "3388000000000000000"}, 401, "callback_signature_invalid"),  # for another issuer
    ({"intermediate_expiration_ms": "past"}, 401, "callback_key_expired"),
    ({"expired_message": True}, 400, "callback_expired"),
])
def test_a_bad_callback_is_refused_with_its_code_and_changes_nothing(client, shop, gstandin, breakage, status,
                                                                      code):
    from cryptography.hazmat.primitives.asymmetric import ec

    card = shop.stamp_card
    options = dict(breakage)
    if options.get("root_key") == "other":
        options["root_key"] = ec.generate_private_key(ec.SECP256R1())  # a key Google never published
    if options.get("intermediate_expiration_ms") == "past":
        options["intermediate_expiration_ms"] = int(time.time() * 1000) - 1000
    expired = options.pop("expired_message", False)
    body = gstandin.signed_callback(message(card, expires_in_ms=-1000 if expired else 60_000), **options)
    r = post(client, body)
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.json["error"]["code"] == code
    assert health_row(card) is None
    assert db.session.scalar(db.select(db.func.count()).select_from(GoogleCallbackNonce)) == 0


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"signature": "x"}',
                                  b'{"signature":"","intermediateSigningKey":{},"protocolVersion":"ECv2",'
                                  b'"signedMessage":""}'])
def test_a_malformed_callback_is_400(client, shop, body):
    r = post(client, body)
    assert r.status_code == 400 and r.json["error"]["code"] == "callback_malformed"


def test_google_keys_are_fetched_once(client, shop, gstandin):
    card = shop.stamp_card
    for event in ("save", "del", "save"):
        assert post(client, gstandin.signed_callback(message(card, event))).status_code == 200
    fetches = [r for r in gstandin.requests if r.path == "/gp/m/issuer/keys"]
    assert len(fetches) == 1  # cached until the first key expires (or 24 h)


def test_google_keys_unavailable_is_503(app, client, shop, gstandin):
    app.config["GOOGLE_CALLBACK_KEYS_URL"] = gstandin.url + "/nothing-here"
    r = post(client, gstandin.signed_callback(message(shop.stamp_card)))
    assert r.status_code == 503 and r.json["error"]["code"] == "callback_keys_unavailable"
    assert r.headers["Retry-After"] == "60"


def test_an_object_that_is_no_card_of_ours_is_ignored(client, shop, gstandin):
    msg = message(shop.stamp_card)
    msg["objectId"] = f"{ISSUER}.someone-else"
    r = post(client, gstandin.signed_callback(msg))
    assert r.status_code == 200 and r.json == {"status": "ignored"}


def test_the_loyalty_class_asks_google_for_callbacks(app, client, shop, gstandin):
    WalletWorker(app).run_once()
    stored = gstandin.classes[google_objects.class_id(shop.stamps, app)]
    assert stored["callbackOptions"] == {"url": "https://loyalty.example.lu/api/v1/loyalty/google/callback"}
    assert "merchantLocations" not in stored  # nothing the shop did not set


def test_apple_health_registrations_fetches_pushes_and_dead_tokens(app, client, shop, apns):
    card = shop.stamp_card
    assert register(client, card, PUSH_TOKENS[0], device="old-phone").status_code == 201
    assert register(client, card, PUSH_TOKENS[1], device="new-phone").status_code == 201
    assert client.get(f"{A}/passes/{PTID}/{card.apple_serial}", headers=auth(card)).status_code == 200
    row = health_row(card)
    assert row.apple_first_registered_at is not None and row.apple_last_fetched_at is not None

    WalletWorker(app).run_once()
    apns.unregister(PUSH_TOKENS[0])  # the old phone is gone: 410
    r = shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
    assert r.status_code == 201
    WalletWorker(app).run_once()
    health = shop.api.get(f"{V}/cards/{card.card_number}/wallet-health").json["apple"]
    assert health["devices"] == 1 and health["tokens_pruned"] == 1 and health["last_push_result"] == "ok"
    assert health["updates_off"] is False and health["last_fetched_at"] is not None

    # The customer turns automatic updates off (Wallet unregisters the last device).
    r = client.delete(f"{A}/devices/new-phone/registrations/{PTID}/{card.apple_serial}", headers=auth(card))
    assert r.status_code == 200
    health = shop.api.get(f"{V}/cards/{card.card_number}/wallet-health").json["apple"]
    assert health["devices"] == 0 and health["updates_off"] is True and health["unregistrations"] == 1
    summary = shop.api.get(f"{V}/wallet-health?program_id={shop.stamps.id}").json
    assert summary["apple"] == {"holders": 0, "devices": 0, "updates_off": 1, "tokens_pruned": 1,
                                "push_failing": 0}


def test_a_failing_push_is_the_last_push_result(app, client, shop, apns):
    card = shop.stamp_card
    register(client, card, PUSH_TOKENS[2])
    WalletWorker(app).run_once()
    apns.set_mode("error", status=500)
    shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
    WalletWorker(app).run_once()
    row = health_row(card)
    assert row.apple_last_push_result.startswith("1 of 1 pushes failed: APNs 500")
    assert shop.api.get(f"{V}/wallet-health").json["apple"]["push_failing"] == 1


def test_the_owner_sees_pass_health_on_the_card_and_the_dashboard(client, shop, gstandin, login):
    card = shop.stamp_card
    register(client, card, PUSH_TOKENS[3])
    post(client, gstandin.signed_callback(message(card, "save")))
    owner = shop.vendor.owner
    assert login(owner.email, owner.plain_password).status_code == 302
    page = client.get(f"/customers/{card.card_number}?lang=en").get_data(as_text=True)
    assert 'id="pass-health"' in page and "On 1 device" in page and "Saved" in page
    dashboard = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert 'data-figure="apple-holders">1<' in dashboard and 'data-figure="google-holders">1<' in dashboard

"""Apple Wallet: the .pkpass of a card and the PassKit web service, end to end against the APNs stand-in."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import time
import zipfile
from email.utils import parsedate_to_datetime

import pytest

from portal.extensions import db
from portal.models import AppleDeviceRegistration, LoyaltyCard, WalletOutbox
from portal.services.wallet.worker import WalletWorker

from .conftest import PUSH_TOKENS

pytestmark = pytest.mark.timeout(90)
V = "/api/v1/vendor/loyalty"
A = "/api/v1/loyalty/apple/v1"


@pytest.fixture
def app_config(wallet_app_config, request):
    return {**wallet_app_config, **getattr(request, "param", {})}


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def auth(card) -> dict:
    return {"Authorization": f"ApplePass {card.apple_auth_token}"}


def stamp(shop, card):
    r = shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
    assert r.status_code == 201, r.json
    db.session.rollback()
    fresh = db.session.get(LoyaltyCard, card.id)
    fresh.last_stamp_at = None  # skip the cooldown for the next stamp
    db.session.commit()
    return r.json["card"]["stamps"]


def test_pkpass_is_a_signed_localised_store_card(client, shop, pki, tmp_path):
    card = shop.stamp_card
    r = client.get(f"/c/{card.public_token}/pass.pkpass")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.apple.pkpass"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{shop.stamps.slug}.pkpass"'
    assert parsedate_to_datetime(r.headers["Last-Modified"])
    files = unzip(r.data)

    p = json.loads(files["pass.json"])
    assert p["formatVersion"] == 1
    assert p["passTypeIdentifier"] == pki.pass_type_id and p["teamIdentifier"] == pki.team_id
    assert p["serialNumber"] == card.apple_serial
    assert p["authenticationToken"] == card.apple_auth_token and len(p["authenticationToken"]) >= 16
    assert p["webServiceURL"] == "https://loyalty.example.lu/api/v1/loyalty/apple"
    assert p["organizationName"] == "Café Test" and p["description"] == "Coffee card"
    (code,) = p["barcodes"]
    assert code["format"] == "PKBarcodeFormatQR" and code["message"] == card.card_number
    assert code["message"].isdigit() and len(code["message"]) == 10
    # The singular "barcode" (deprecated since iOS 9) is gone: passkit-generator's schema rejects it.
    assert "barcode" not in p
    assert p["backgroundColor"] == "rgb(31,78,121)" and p["foregroundColor"] == "rgb(255,255,255)"
    header = p["storeCard"]["headerFields"][0]
    assert header["value"] == 0 and header["changeMessage"] == "change_balance"

    for lang in ("en", "fr", "de", "lb"):
        strings = files[f"{lang}.lproj/pass.strings"].decode("utf-8")
        assert '"change_balance" = "%@ stamps";' in strings or lang != "en"
        assert '"label_balance" = ' in strings and "%@" in strings
    for image in ("icon.png", "icon@2x.png", "icon@3x.png", "logo.png", "logo@2x.png", "logo@3x.png"):
        assert files[image].startswith(b"\x89PNG\r\n\x1a\n"), image

    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest, name

    (tmp_path / "manifest.json").write_bytes(files["manifest.json"])
    (tmp_path / "signature").write_bytes(files["signature"])
    result = subprocess.run(
        ["openssl", "smime", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "signature"),
         "-content", str(tmp_path / "manifest.json"), "-CAfile", pki.root_ca, "-purpose", "any",
         "-out", "/dev/null"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr

    # The card page offers the pass (and Google) since both wallets are configured.
    html = client.get(f"/c/{card.public_token}").get_data(as_text=True)
    assert f'href="https://loyalty.example.lu/c/{card.public_token}/pass.pkpass"' in html
    assert "Add to Apple Wallet" in html and "https://pay.google.com/gp/v/save/" in html


def test_points_pass_and_a_custom_logo(client, shop):
    from PIL import Image

    from portal.services import programs
    from portal.services.accounts import actor_for_user
    from portal.services.wallet import images

    program = shop.points
    upload = images.encode_png_rgba(1200, 400, [bytes((10, 120, 40, 255)) * 1200] * 400)
    programs.set_logo(actor_for_user(shop.vendor.owner), program.id, upload)
    db.session.commit()
    files = unzip(client.get(f"/c/{shop.points_card.public_token}/pass.pkpass").data)
    # Re-encoded to Wallet's logo area (160 × 50 pt) at each scale.
    for name, size in (("logo.png", (150, 50)), ("logo@2x.png", (300, 100)), ("logo@3x.png", (450, 150))):
        with Image.open(io.BytesIO(files[name])) as image:
            assert image.size == size and image.getpixel((5, 5)) == (10, 120, 40, 255), name
    p = json.loads(files["pass.json"])
    assert p["storeCard"]["primaryFields"][0]["key"] == "points"
    assert "Croissant" in json.dumps(p["storeCard"]["backFields"])
    assert '"change_balance" = "%@ points";' in files["en.lproj/pass.strings"].decode()


def test_passes_reuse_one_signer_and_are_fast(client, shop, app):
    from portal.services.wallet.settings import cache

    url = f"/c/{shop.stamp_card.public_token}/pass.pkpass"
    assert client.get(url).status_code == 200
    signer = cache(app)["pass_signer"]
    started = time.perf_counter()
    for _ in range(30):
        assert client.get(url).status_code == 200
    elapsed = time.perf_counter() - started
    assert cache(app)["pass_signer"] is signer
    assert elapsed < 6, f"30 passes took {elapsed:.2f}s"


def _register(client, card, token, device="device-A"):
    return client.post(f"{A}/devices/{device}/registrations/pass.lu.example.loyalty/{card.apple_serial}",
                       json={"pushToken": token}, headers=auth(card))


def test_full_device_flow(client, shop, app, apns):
    card = shop.stamp_card
    ptid = "pass.lu.example.loyalty"
    # Register: 201, again: 200 (and a new push token is kept).
    assert _register(client, card, PUSH_TOKENS[0]).status_code == 201
    assert _register(client, card, PUSH_TOKENS[0]).status_code == 200
    assert _register(client, card, PUSH_TOKENS[1], device="device-B").status_code == 201

    listing = client.get(f"{A}/devices/device-A/registrations/{ptid}")
    assert listing.status_code == 200
    assert listing.json["serialNumbers"] == [card.apple_serial]
    tag = listing.json["lastUpdated"]
    assert isinstance(tag, str) and tag.isdigit()

    first = client.get(f"{A}/passes/{ptid}/{card.apple_serial}", headers=auth(card))
    assert first.status_code == 200 and first.mimetype == "application/vnd.apple.pkpass"

    # A stamp through the vendor API; the worker pushes to both devices.
    WalletWorker(app).run_once()  # the enrolment rows (no device yet)
    apns.clear()
    assert stamp(shop, card) == 1
    result = WalletWorker(app).run_once()
    assert result.delivered == 1 and result.pushes == 2
    pushes = apns.wait_for(2)
    assert sorted(p.token for p in pushes) == sorted(PUSH_TOKENS[:2])
    for push in pushes:
        assert push.topic == ptid and push.body == b"{}" and push.http_version in ("HTTP/2", "2", "h2")
        assert push.client_subject.get("userId") == ptid or ptid in json.dumps(push.client_subject)

    # The device asks which passes changed since its tag, then fetches the new pass.
    changed = client.get(f"{A}/devices/device-A/registrations/{ptid}?passesUpdatedSince={tag}")
    assert changed.status_code == 200 and changed.json["serialNumbers"] == [card.apple_serial]
    latest = client.get(f"{A}/passes/{ptid}/{card.apple_serial}", headers=auth(card))
    assert latest.status_code == 200
    p = json.loads(unzip(latest.data)["pass.json"])
    assert p["storeCard"]["headerFields"][0]["value"] == 1
    # If-Modified-Since: once the second of the change is over, the pass announces a date that yields 304.
    time.sleep(max(0.0, 1.05 - (time.time() % 1)) if latest.headers["Last-Modified"] else 0)
    again = client.get(f"{A}/passes/{ptid}/{card.apple_serial}", headers=auth(card))
    lm = again.headers["Last-Modified"]
    not_modified = client.get(f"{A}/passes/{ptid}/{card.apple_serial}",
                              headers={**auth(card), "If-Modified-Since": lm})
    assert not_modified.status_code == 304 and not_modified.data == b""
    # With the older date the device had, the pass is sent again.
    older = client.get(f"{A}/passes/{ptid}/{card.apple_serial}",
                       headers={**auth(card), "If-Modified-Since": first.headers["Last-Modified"]})
    assert older.status_code == 200

    # Unregister: 200; the device lists nothing more.
    r = client.delete(f"{A}/devices/device-A/registrations/{ptid}/{card.apple_serial}", headers=auth(card))
    assert r.status_code == 200
    assert client.get(f"{A}/devices/device-A/registrations/{ptid}").status_code == 204
    db.session.rollback()
    assert [r.device_library_id for r in db.session.scalars(db.select(AppleDeviceRegistration))] == ["device-B"]


@pytest.mark.parametrize("app_config", [{"WALLET_UPDATE_TAG_MARGIN_SECONDS": 0}], indirect=True)
def test_updated_since_tag_has_microsecond_precision(client, shop, app):
    card, other = shop.stamp_card, shop.points_card
    ptid = "pass.lu.example.loyalty"
    assert _register(client, card, PUSH_TOKENS[0]).status_code == 201
    assert _register(client, other, PUSH_TOKENS[0]).status_code == 201
    everything = client.get(f"{A}/devices/device-A/registrations/{ptid}")
    assert sorted(everything.json["serialNumbers"]) == sorted([card.apple_serial, other.apple_serial])
    tag = everything.json["lastUpdated"]
    assert client.get(f"{A}/devices/device-A/registrations/{ptid}?passesUpdatedSince={tag}").status_code == 204
    stamp(shop, card)
    changed = client.get(f"{A}/devices/device-A/registrations/{ptid}?passesUpdatedSince={tag}")
    assert changed.json["serialNumbers"] == [card.apple_serial]
    assert int(changed.json["lastUpdated"]) > int(tag)
    # A change one microsecond after the tag is still seen.
    db.session.rollback()
    from portal.services.wallet.passes import parse_update_tag

    row = db.session.get(LoyaltyCard, other.id)
    row.updated_at = parse_update_tag(changed.json["lastUpdated"]).replace() + __import__("datetime").timedelta(
        microseconds=1)
    db.session.commit()
    after = client.get(f"{A}/devices/device-A/registrations/{ptid}?passesUpdatedSince={changed.json['lastUpdated']}")
    assert after.json["serialNumbers"] == [other.apple_serial]


def test_a_device_tag_never_skips_a_change_committed_late(client, shop, app):
    """The tag handed out stays WALLET_UPDATE_TAG_MARGIN_SECONDS behind now: a transaction that started before
    the listing but commits after it is still reported next time."""
    card = shop.stamp_card
    ptid = "pass.lu.example.loyalty"
    _register(client, card, PUSH_TOKENS[0])
    tag = client.get(f"{A}/devices/device-A/registrations/{ptid}").json["lastUpdated"]
    from portal.services import clock
    from portal.services.wallet.passes import parse_update_tag

    assert parse_update_tag(tag) <= clock.now() - __import__("datetime").timedelta(seconds=29)
    # A change stamped 5 s ago (its transaction was slow) appears after the device got that tag.
    db.session.rollback()
    row = db.session.get(LoyaltyCard, card.id)
    row.updated_at = clock.now() - __import__("datetime").timedelta(seconds=5)
    db.session.commit()
    assert client.get(f"{A}/devices/device-A/registrations/{ptid}?passesUpdatedSince={tag}").json[
        "serialNumbers"] == [card.apple_serial]


def test_wrong_token_is_401_and_reveals_nothing(client, shop):
    card = shop.stamp_card
    ptid = "pass.lu.example.loyalty"
    bad = {"Authorization": "ApplePass " + "x" * 32}
    answers = []
    for serial in (card.apple_serial, "0" * 32):
        for headers in (bad, {}, {"Authorization": f"Bearer {card.apple_auth_token}"}):
            for method, path, body in (
                    ("post", f"{A}/devices/d1/registrations/{ptid}/{serial}", {"pushToken": PUSH_TOKENS[0]}),
                    ("get", f"{A}/passes/{ptid}/{serial}", None),
                    ("delete", f"{A}/devices/d1/registrations/{ptid}/{serial}", None)):
                r = getattr(client, method)(path, json=body, headers=headers)
                answers.append((r.status_code, r.data, r.headers.get("WWW-Authenticate")))
    assert {a[0] for a in answers} == {401}
    assert len({a[1] for a in answers}) == 1 and len({a[2] for a in answers}) == 1
    # Another card's token does not open this card.
    other = client.get(f"{A}/passes/{ptid}/{card.apple_serial}", headers=auth(shop.points_card))
    assert other.status_code == 401
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(AppleDeviceRegistration)) == 0


def test_unknown_pass_type_is_404_and_bad_input_400(client, shop):
    card = shop.stamp_card
    r = client.post(f"{A}/devices/d1/registrations/pass.other.type/{card.apple_serial}",
                    json={"pushToken": PUSH_TOKENS[0]}, headers=auth(card))
    assert r.status_code == 404
    assert client.get(f"{A}/devices/d1/registrations/pass.other.type").status_code == 404
    assert client.get(f"{A}/passes/pass.other.type/{card.apple_serial}", headers=auth(card)).status_code == 404
    r = client.post(f"{A}/devices/d1/registrations/pass.lu.example.loyalty/{card.apple_serial}",
                    json={"pushToken": "not hex!"}, headers=auth(card))
    assert r.status_code == 400
    assert client.get(f"{A}/devices/unknown-device/registrations/pass.lu.example.loyalty").status_code == 204


def test_device_log_endpoint(client, caplog, monkeypatch):
    import logging

    # Alembic's fileConfig (the session's migration) disables loggers that existed before it ran.
    monkeypatch.setattr(logging.getLogger("portal.wallet.apple_devices"), "disabled", False)
    r = client.post(f"{A}/log", json={"logs": ["Web service error for pass.lu.example.loyalty: 401"]})
    assert r.status_code == 200
    assert any("Web service error" in rec.getMessage() for rec in caplog.records)
    assert client.post(f"{A}/log", data="garbage").status_code == 200


def _device_log_records(caplog):
    return [rec.getMessage() for rec in caplog.records if rec.name == "portal.wallet.apple_devices"]


def test_device_log_escapes_control_characters_and_caps_what_it_writes(client, caplog, monkeypatch):
    import logging

    monkeypatch.setattr(logging.getLogger("portal.wallet.apple_devices"), "disabled", False)
    forged = ("error\r2026-01-01 INFO portal: admin logged in\n\x1b[31mred\x1b[0m\u2028next\u202eevil\x85\x00"
              "\tend")
    r = client.post(f"{A}/log", json={"logs": [forged, "x" * 5000] + [f"msg {i}" for i in range(200)]})
    assert r.status_code == 200
    lines = _device_log_records(caplog)
    assert 1 <= len(lines) <= 20
    first = lines[0]
    assert not any(ord(ch) < 32 or 0x7f <= ord(ch) < 0xa0 or ch in "\u2028\u202e" for ch in first)
    assert "\\x0d2026-01-01 INFO portal: admin logged in\\x0a\\x1b[31mred\\x1b[0m\\u2028next\\u202eevil" in first
    assert "x" * 500 in lines[1] and "x" * 501 not in lines[1] and len(lines[1]) < 600


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "APPLE_LOG_RATE_LIMIT": "3 per minute"}],
                         indirect=True)
def test_device_log_is_rate_limited(client, caplog, monkeypatch):
    import logging

    monkeypatch.setattr(logging.getLogger("portal.wallet.apple_devices"), "disabled", False)
    codes = [client.post(f"{A}/log", json={"logs": [f"message {i}"]}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert len(_device_log_records(caplog)) == 3


def test_gone_token_removes_the_registration(client, shop, app, apns):
    card = shop.stamp_card
    _register(client, card, PUSH_TOKENS[0], device="old-phone")
    _register(client, card, PUSH_TOKENS[1], device="new-phone")
    WalletWorker(app).run_once()
    apns.clear()
    apns.unregister(PUSH_TOKENS[0])  # 410 Unregistered
    stamp(shop, card)
    result = WalletWorker(app).run_once()
    assert result.delivered == 1 and result.failed == 0
    assert sorted(p.status for p in apns.pushes) == [200, 410]
    db.session.rollback()
    assert [r.device_library_id for r in db.session.scalars(db.select(AppleDeviceRegistration))] == ["new-phone"]
    assert db.session.scalar(db.select(db.func.count()).select_from(WalletOutbox)
                             .where(WalletOutbox.delivered_at.is_(None))) == 0


@pytest.mark.parametrize("app_config", [{"APPLE_PASS_CERT": None}], indirect=True)
def test_without_apple_configuration_the_pass_and_service_are_404(client, shop):
    card = shop.stamp_card
    assert client.get(f"/c/{card.public_token}/pass.pkpass").status_code == 404
    assert client.get(f"{A}/passes/pass.lu.example.loyalty/{card.apple_serial}",
                      headers=auth(card)).status_code == 404
    html = client.get(f"/c/{card.public_token}").get_data(as_text=True)
    assert "Add to Apple Wallet" not in html and "Add to Google Wallet" in html

"""In Chromium: the owner sees pass health on the dashboard and the card page and sets shop locations (errors next
to the fields); the operator sees the certificate panel warn about a certificate expiring in 20 days. Screenshots
in test-output/screenshots/ (wallet-health-*.png)."""
from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.browser.browser_helpers import assert_accessible, shot, ui_login
from tests.wallet_support.ca import make_test_pki

from .conftest import PUSH_TOKENS
from .test_wallet_health import message, post, register

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def app_config(wallet_app_config, gstandin, tmp_path):
    soon = make_test_pki(tmp_path / "pki", key_password="pw",
                         pass_not_after=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=20, hours=1))
    return {**wallet_app_config, "GOOGLE_CALLBACK_KEYS_URL": gstandin.callback_keys_url,
            "APPLE_PASS_CERT": soon.pass_cert, "APPLE_PASS_KEY": soon.pass_key, "APPLE_PASS_KEY_PASSWORD": "pw",
            "APPLE_WWDR_CERT": soon.wwdr_cert}


def test_pass_health_and_certificates_in_the_browser(live_server, page, client, shop, factories, gstandin,
                                                     screenshot_dir):
    console_errors: list[str] = []
    page.set_default_timeout(10_000)
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    card = shop.stamp_card
    admin = factories.user(None, role="admin")
    assert register(client, card, PUSH_TOKENS[0], device="phone-1").status_code == 201
    assert register(client, card, PUSH_TOKENS[1], device="tablet-1").status_code == 201
    assert post(client, gstandin.signed_callback(message(card, "save"))).json == {"status": "accepted"}
    other = factories.card(shop.stamps)
    assert register(client, other, PUSH_TOKENS[2], device="phone-2").status_code == 201
    assert client.delete(f"/api/v1/loyalty/apple/v1/devices/phone-2/registrations/pass.lu.example.loyalty/"
                  f"{other.apple_serial}", headers={"Authorization": f"ApplePass {other.apple_auth_token}"}).status_code == 200
    base = live_server.url

    owner = shop.vendor.owner
    ui_login(page, base, owner.email, owner.plain_password)
    page.goto(base + "/dashboard")
    tile = page.locator("#wallet-health")
    expect(tile.locator('[data-figure="apple-holders"]')).to_have_text("1")
    expect(tile.locator('[data-figure="google-holders"]')).to_have_text("1")
    expect(tile.locator('[data-figure="apple-updates-off"]')).to_have_text("1")
    assert_accessible(page, "dashboard")
    tile.screenshot(path=str(screenshot_dir / "wallet-health-dashboard-tile.png"))

    page.goto(base + f"/customers/{card.card_number}")
    health = page.locator("#pass-health")
    expect(health).to_contain_text("On 2 devices")
    expect(health).to_contain_text("Saved")
    health.screenshot(path=str(screenshot_dir / "wallet-health-card.png"))

    page.goto(base + f"/programs/{shop.stamps.id}/edit")
    page.get_by_role("link", name="Locations and dates").click()
    page.locator("#locations-0-latitude").fill("95")
    page.locator("#locations-0-longitude").fill("6.13")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#locations-0-latitude-error")).to_have_text("A latitude is between -90 and 90.")
    assert_accessible(page, "relevance")
    shot(page, screenshot_dir, "wallet-health-relevance-error")
    page.locator("#locations-0-latitude").fill("49.6116")
    page.locator("#locations-0-relevant_text").fill("Café Test is around the corner")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_be_visible()

    page.context.clear_cookies()
    ui_login(page, base, admin.email, admin.plain_password)
    page.goto(base + "/admin/")
    panel = page.locator("#certificates")
    expect(panel.locator('[data-certificate="pass"]')).to_have_attribute("data-state", "expiring")
    expect(panel).to_contain_text("Expires in 20 days: renew it now")
    assert_accessible(page, "admin")
    panel.screenshot(path=str(screenshot_dir / "wallet-health-certificates.png"))
    # The refused form answers 422 (its status is right; Chromium logs any 4xx page as a console error).
    assert not [e for e in console_errors if "status of 422" not in e], console_errors

"""Certificate watch: wallet-check and the operators' admin page warn 30 days before the pass certificate or the
WWDR intermediate expires (checked at 31 and 29 days with time moved by time-machine); once one has expired, pass
downloads answer a clear 503 (page or JSON, code ``pass_certificate_expired``) instead of a pass Wallet refuses."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from tests.wallet_support.ca import make_test_pki

pytestmark = pytest.mark.timeout(90)
A = "/api/v1/loyalty/apple/v1"
PTID = "pass.lu.example.loyalty"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
PASS_EXPIRES = NOW + dt.timedelta(days=60)
WWDR_EXPIRES = NOW + dt.timedelta(days=200)


@pytest.fixture(scope="module")
def short_pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("short-pki"), key_password="pw",
                         pass_not_after=PASS_EXPIRES, wwdr_not_after=WWDR_EXPIRES)


@pytest.fixture
def app_config(wallet_app_config, short_pki):
    return {**wallet_app_config, "APPLE_PASS_CERT": short_pki.pass_cert, "APPLE_PASS_KEY": short_pki.pass_key,
            "APPLE_PASS_KEY_PASSWORD": "pw", "APPLE_WWDR_CERT": short_pki.wwdr_cert}


def check(runner) -> tuple[int, str, dict]:
    text = runner.invoke(args=["loyalty", "wallet-check"])
    data = runner.invoke(args=["loyalty", "wallet-check", "--json"])
    return text.exit_code, text.output, json.loads(data.output)


def states(report) -> dict:
    return {c["name"]: (c["state"], c["days_left"]) for c in report["apple"]["certificates"]}


def test_wallet_check_shows_both_dates_and_warns_from_30_days(runner):
    with time_machine.travel(PASS_EXPIRES - dt.timedelta(days=31), tick=False):
        code, text, report = check(runner)
    assert code == 0, text
    assert f"Pass certificate valid until {PASS_EXPIRES:%Y-%m-%d} (31 days left)" in text
    assert f"WWDR intermediate certificate valid until {WWDR_EXPIRES:%Y-%m-%d}" in text
    assert "WARNING" not in text and states(report) == {"pass": ("ok", 31), "wwdr": ("ok", 171)}

    with time_machine.travel(PASS_EXPIRES - dt.timedelta(days=29), tick=False):
        code, text, report = check(runner)
    assert code == 1
    assert "(29 days left)  WARNING: expires soon, renew it" in text
    assert f"The pass certificate expires on {PASS_EXPIRES:%Y-%m-%d} (in 29 days); renew it soon." in text
    assert states(report)["pass"] == ("expiring", 29) and report["ok"] is False


def test_the_wwdr_intermediate_is_watched_too(runner):
    with time_machine.travel(WWDR_EXPIRES - dt.timedelta(days=29), tick=False):
        code, text, report = check(runner)
    assert code == 1 and states(report)["wwdr"] == ("expiring", 29)
    assert "The WWDR certificate expires on" in text


def test_the_admin_page_shows_the_certificates(app, factories, login, client):
    admin = factories.user(None, role="admin")
    assert login(admin.email, admin.plain_password).status_code == 302
    with time_machine.travel(PASS_EXPIRES - dt.timedelta(days=31), tick=False):
        page = client.get("/admin/?lang=en").get_data(as_text=True)
    assert 'data-certificate="pass" data-state="ok"' in page and "31 days left" in page
    with time_machine.travel(PASS_EXPIRES - dt.timedelta(days=29), tick=False):
        page = client.get("/admin/?lang=en").get_data(as_text=True)
    assert 'data-certificate="pass" data-state="expiring"' in page
    assert "Expires in 29 days: renew it now" in page
    assert 'data-certificate="wwdr" data-state="ok"' in page


def test_an_expired_certificate_stops_pass_downloads_with_a_clear_answer(client, shop):
    card = shop.stamp_card
    assert client.get(f"/c/{card.public_token}/pass.pkpass").status_code == 200
    with time_machine.travel(PASS_EXPIRES + dt.timedelta(hours=1), tick=False):
        r = client.get(f"/c/{card.public_token}/pass.pkpass?lang=en")
        assert r.status_code == 503 and r.mimetype == "text/html"
        assert "pass certificate has expired" in r.get_data(as_text=True)
        assert "Content-Disposition" not in r.headers
        r = client.get(f"{A}/passes/{PTID}/{card.apple_serial}",
                       headers={"Authorization": f"ApplePass {card.apple_auth_token}"})
        assert r.status_code == 503 and r.json["error"]["code"] == "pass_certificate_expired"
        assert client.get(f"/c/{card.public_token}").status_code == 200  # the card page itself still works

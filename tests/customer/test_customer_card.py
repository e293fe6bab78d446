"""The customer's card page (/c/<token>): balance, QR, history, locale, wallet buttons, GDPR export and erasure."""
from __future__ import annotations

import json
import re

import pytest

from portal.extensions import db
from portal.models import AppleDeviceRegistration, LoyaltyCard

from support import csrf_from

from .conftest import PUSH_TOKENS

pytestmark = pytest.mark.timeout(60)
V = "/api/v1/vendor/loyalty"


def _stamp(shop, card, n=1):
    for _ in range(n):
        r = shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
        assert r.status_code == 201, r.json
        # Cooldown between stamps: skip it by moving the card's last stamp back.
        db.session.rollback()
        fresh = db.session.get(LoyaltyCard, card.id)
        fresh.last_stamp_at = None
        db.session.commit()


def test_card_page_shows_balance_grid_qr_number_and_history(client, shop):
    card = shop.stamp_card
    r = shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
    assert r.status_code == 201
    page = client.get(f"/c/{card.public_token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Coffee card" in html and "Café Test" in html
    assert html.count('class="pc-filled"') == 1 and html.count('class="pc-empty"') == 9
    assert "9 more stamps to A free coffee." in html
    number = card.card_number
    assert f"{number[:3]} {number[3:6]} {number[6:]}" in html  # grouped for reading
    assert f'src="/c/{card.public_token}/qr.svg"' in html
    assert "Recent activity" in html and "Stamp" in html and "+1" in html
    # Personal page: not cached, no Referer leak of the secret link, not indexed.
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in html and "style=" not in html
    # Wallets are not configured in this app: no buttons, and the pass route is 404.
    assert "Apple Wallet" not in html and "Google Wallet" not in html
    assert client.get(f"/c/{card.public_token}/pass.pkpass").status_code == 404


def test_qr_svg_encodes_the_card_number(client, shop):
    import segno

    r = client.get(f"/c/{shop.stamp_card.public_token}/qr.svg")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    svg = r.get_data(as_text=True)
    assert svg.startswith("<svg") and "<script" not in svg
    # The same symbol segno makes for the 10 digits (staff scanners read digits, not URLs).
    expected = segno.make(shop.stamp_card.card_number, error="m", micro=False)
    assert expected.designator in ("1-M", "1-H", "1-Q", "1-L")  # tiny: numeric mode
    import io

    out = io.BytesIO()
    expected.save(out, kind="svg", scale=8, border=4, xmldecl=False, svgns=True, title="Card number",
                  svgclass=None, lineclass=None)
    path = re.search(r' d="([^"]+)"', svg).group(1)
    assert path == re.search(r' d="([^"]+)"', out.getvalue().decode()).group(1)


def test_points_card_shows_reachable_rewards(client, shop):
    card = shop.points_card
    r = shop.api.post(f"{V}/cards/{card.card_number}/points", json={"staff_pin": "4321", "points": 25})
    assert r.status_code == 201, r.json
    html = client.get(f"/c/{card.public_token}").get_data(as_text=True)
    assert re.search(r'class="pc-reachable">\s*<span class="pc-cost">20 points</span> Croissant', html)
    assert re.search(r'class="pc-later">\s*<span class="pc-cost">100 points</span> Cake', html)
    assert "75 to go" in html


def test_card_locale_is_the_default_and_lang_overrides(client, factories, shop):
    card = factories.card(shop.stamps, email="jean@example.lu", locale="de")
    html = client.get(f"/c/{card.public_token}").get_data(as_text=True)
    assert '<html lang="de">' in html
    other = shop.api.client.application.test_client()
    html = other.get(f"/c/{card.public_token}?lang=lu").get_data(as_text=True)
    assert '<html lang="lb">' in html


def test_unknown_token_is_404(client):
    assert client.get("/c/not-a-real-token").status_code == 404
    assert client.get("/c/not-a-real-token/qr.svg").status_code == 404
    assert client.get("/c/" + "x" * 80).status_code == 404


def test_gdpr_download(client, shop):
    card = shop.stamp_card
    shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
    r = client.get(f"/c/{card.public_token}/data.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    data = json.loads(r.get_data(as_text=True))
    assert data["card"]["card_number"] == card.card_number
    assert data["card"]["customer"]["email"] == card.customer_email
    assert len(data["transactions"]) == 1 and data["transactions"][0]["type"] == "stamp_add"


def test_gdpr_erasure_needs_confirmation_and_csrf_then_the_link_is_dead(client, shop):
    card = shop.stamp_card
    token, serial = card.public_token, card.apple_serial
    db.session.add(AppleDeviceRegistration(device_library_id="device-1", push_token=PUSH_TOKENS[0],
                                           pass_type_id="pass.lu.example.loyalty", serial_number=serial))
    db.session.commit()
    confirm = client.get(f"/c/{token}/delete")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "cannot be undone" in html
    # Without the CSRF token nothing happens.
    assert client.post(f"/c/{token}/delete").status_code == 400
    assert client.get(f"/c/{token}").status_code == 200
    r = client.post(f"/c/{token}/delete", data={"csrf_token": csrf_from(html)})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/p/{shop.stamps.slug}/deleted")
    assert "was deleted" in client.get(r.headers["Location"]).get_data(as_text=True)
    for path in ("", "/qr.svg", "/data.json", "/delete"):
        assert client.get(f"/c/{token}{path}").status_code == 404, path
    db.session.rollback()
    erased = db.session.get(LoyaltyCard, card.id)
    assert erased.customer_email is None and erased.customer_name == "" and erased.erased_at is not None
    # The phone's registration stays: the wallet worker pushes it, and it fetches the voided pass
    # (tests/customer/test_card_replace.py).
    assert db.session.scalar(db.select(db.func.count()).select_from(AppleDeviceRegistration)) == 1

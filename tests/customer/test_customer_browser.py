"""A customer scans the shop's poster with a phone (390×844, Chromium): fills the form, lands on the card page and
sees a QR code that decodes to the 10-digit card number the staff tablet expects."""
from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.models import LoyaltyCard
from tests.browser.conftest import AXE

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="fr-FR")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    context.close()


def _decode_qr(page, selector: str) -> list[str]:
    """Draw the QR <img> onto a canvas in the page and decode its pixels with zbar."""
    from pyzbar import pyzbar

    pixels = page.evaluate("""(selector) => {
        const img = document.querySelector(selector);
        const size = 400, quiet = 40;
        const canvas = document.createElement('canvas');
        canvas.width = size + 2 * quiet; canvas.height = size + 2 * quiet;
        const ctx = canvas.getContext('2d');
        ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(img, quiet, quiet, size, size);
        const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        const grey = new Array(canvas.width * canvas.height);
        for (let i = 0; i < grey.length; i++) grey[i] = data[4 * i];
        return {w: canvas.width, h: canvas.height, grey};
    }""", selector)
    decoded = pyzbar.decode((bytes(pixels["grey"]), pixels["w"], pixels["h"]))
    return [d.data.decode() for d in decoded]


def _axe_serious(page) -> list:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.html)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def test_enrol_from_the_poster_on_a_phone(live_server, phone, factories, screenshot_dir):
    vendor = factories.vendor("Boulangerie Schmit", locale="fr")
    program = factories.program(vendor, name="Carte café", stamps_required=8, reward_text="un café offert")
    base = live_server.url

    phone.goto(f"{base}/p/{program.slug}")
    assert phone.locator("h1").inner_text() == "Carte café"
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    assert not _axe_serious(phone), _axe_serious(phone)
    phone.screenshot(path=str(screenshot_dir / "customer-enrol-phone.png"), full_page=True)

    # Submitting without consent: the message sits next to the checkbox, what was typed is kept.
    phone.locator("#name").fill("Léa Muller")
    phone.locator("#email").fill("lea@example.lu")
    phone.wait_for_timeout(2100)  # the bot guard wants at least two seconds on the form
    phone.locator("button[type=submit]").click()
    phone.wait_for_load_state("domcontentloaded")
    assert phone.locator("#consent-error").is_visible()
    assert phone.locator("#email").input_value() == "lea@example.lu"
    phone.screenshot(path=str(screenshot_dir / "customer-enrol-phone-error.png"), full_page=True)
    assert phone.errors == ["Failed to load resource: the server responded with a status of 422 (UNPROCESSABLE "
                            "ENTITY)"]  # the refused form itself, nothing else
    phone.errors.clear()

    phone.locator("#consent").check()
    phone.locator("#locale").select_option("lb")
    phone.wait_for_timeout(2100)
    phone.locator("button[type=submit]").click()
    phone.wait_for_url(re.compile(r".*/c/[A-Za-z0-9_-]+$"))

    db.session.rollback()
    card = db.session.scalars(db.select(LoyaltyCard)).one()
    assert card.locale == "lb" and card.customer_email == "lea@example.lu"
    qr = phone.locator("img.pc-qr")
    qr.wait_for()
    assert phone.evaluate("document.querySelector('img.pc-qr').naturalWidth") > 0
    assert qr.bounding_box()["width"] >= 200  # big enough for the tablet's camera
    number = card.card_number
    assert phone.locator(".pc-digits").inner_text() == f"{number[:3]} {number[3:6]} {number[6:]}"
    assert _decode_qr(phone, "img.pc-qr") == [number]
    assert phone.locator(".pc-stamps li").count() == 8
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not _axe_serious(phone), _axe_serious(phone)
    assert not phone.errors, phone.errors  # no CSP violations or script errors
    phone.screenshot(path=str(screenshot_dir / "customer-card-phone.png"), full_page=True)


@pytest.fixture
def app_config(request):
    if "wallets" in request.node.name:
        return request.getfixturevalue("wallet_app_config")
    return getattr(request, "param", {})


def test_card_pages_with_wallets_on_a_phone(live_server, phone, shop, screenshot_dir):
    """A stamp card with progress and a points card with its catalog, both wallets configured."""
    V = "/api/v1/vendor/loyalty"
    for _ in range(3):
        assert shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps",
                             json={"staff_pin": "4321"}).status_code == 201
        db.session.rollback()
        db.session.get(LoyaltyCard, shop.stamp_card.id).last_stamp_at = None
        db.session.commit()
    assert shop.api.post(f"{V}/cards/{shop.points_card.card_number}/points",
                         json={"staff_pin": "4321", "points": 42}).status_code == 201

    phone.goto(f"{live_server.url}/c/{shop.stamp_card.public_token}?lang=en")
    assert phone.locator(".pc-stamps .pc-filled").count() == 3
    apple = phone.get_by_role("link", name="Add to Apple Wallet")
    google = phone.get_by_role("link", name="Add to Google Wallet")
    assert apple.is_visible() and google.is_visible()
    assert google.get_attribute("href").startswith("https://pay.google.com/gp/v/save/")
    pkpass = phone.request.get(apple.get_attribute("href"))
    assert pkpass.status == 200 and pkpass.headers["content-type"] == "application/vnd.apple.pkpass"
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not _axe_serious(phone), _axe_serious(phone)
    phone.screenshot(path=str(screenshot_dir / "customer-card-stamps-wallets-phone.png"), full_page=True)

    phone.goto(f"{live_server.url}/c/{shop.points_card.public_token}?lang=en")
    assert phone.locator(".pc-reachable").count() == 1 and phone.locator(".pc-later").count() == 1
    assert not _axe_serious(phone), _axe_serious(phone)
    assert not phone.errors, phone.errors
    phone.screenshot(path=str(screenshot_dir / "customer-card-points-phone.png"), full_page=True)

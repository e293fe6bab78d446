"""A customer's card is theirs alone, on a phone (390×844, Chromium): enrolling twice with one email shows "check
your email" and nothing of the card; the email (received by an in-process SMTP server) opens the card once, with
the wallet buttons; at the till, the tablet's one-time QR opens the card on the phone once."""
from __future__ import annotations

import subprocess

import pytest

from portal.extensions import db
from portal.models import LoyaltyCard
from portal.services.mail.worker import MailWorker
from tests.browser.browser_helpers import axe_violations, ui_login
from tests.conftest import free_port
from tests.mail_support import SmtpServer, link_of, smtp_config

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def app_config(wallet_app_config, smtp_port):
    return {**wallet_app_config, **smtp_config(smtp_port)}


@pytest.fixture
def smtp(smtp_port):
    with SmtpServer(smtp_port) as server:
        yield server


def _phone(browser, locale="en-GB"):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale=locale)
    return context, context.new_page()


def _enrol(page, base, slug, email):
    page.goto(f"{base}/p/{slug}?lang=en")
    page.locator("#email").fill(email)
    page.locator("#consent").check()
    page.wait_for_timeout(2100)  # the bot guard wants two seconds on the form
    page.locator("button[type=submit]").click()
    page.wait_for_load_state("domcontentloaded")


def _visible_text(page) -> str:
    return page.content()


def test_repeat_enrolment_on_a_phone_sends_a_link_that_opens_the_card_once(live_server, browser, factories, app,
                                                                            smtp, screenshot_dir):
    vendor = factories.vendor("Café Am Eck", locale="lb")
    program = factories.program(vendor, name="Kaffiskaart", stamps_required=8, reward_text="e Kaffi")
    base = live_server.url

    owner_ctx, owner = _phone(browser)
    _enrol(owner, base, program.slug, "lea@example.lu")
    assert "/c/" in owner.url
    db.session.rollback()
    card = db.session.scalars(db.select(LoyaltyCard)).one()

    thief_ctx, thief = _phone(browser)
    _enrol(thief, base, program.slug, "lea@example.lu")
    html = thief.content()
    assert "/c/" not in thief.url and thief.locator("h1").inner_text() == "Check your email"
    assert card.public_token not in html and card.card_number not in html and ".pkpass" not in html
    assert thief.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not axe_violations(thief)
    thief.screenshot(path=str(screenshot_dir / "customer-repeat-enrol-phone.png"), full_page=True)
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(LoyaltyCard)) == 1

    assert MailWorker(app).run_once().sent == 1
    link = link_of(smtp.messages[0])
    new_ctx, new_phone = _phone(browser)
    new_phone.goto(link)
    assert not axe_violations(new_phone)
    new_phone.screenshot(path=str(screenshot_dir / "customer-sign-in-link-phone.png"), full_page=True)
    new_phone.get_by_role("button", name="Open my card").click()
    new_phone.wait_for_load_state("domcontentloaded")
    assert new_phone.url.endswith(f"/c/{card.public_token}")
    assert new_phone.locator(".pc-wallets a").count() == 2  # Apple and Google Wallet
    new_phone.screenshot(path=str(screenshot_dir / "customer-card-after-link-phone.png"), full_page=True)

    thief.goto(link)  # the link again: used
    assert thief.locator("h1").inner_text() != "Kaffiskaart"
    assert "/c/" not in thief.url and card.public_token not in thief.content()
    assert thief.locator(f'a[href$="/p/{program.slug}/lost"]').count() == 1
    assert not axe_violations(thief)
    thief.screenshot(path=str(screenshot_dir / "customer-used-link-phone.png"), full_page=True)
    thief.locator(f'a[href$="/p/{program.slug}/lost"]').click()  # "Send me a new link": the Lost-your-card form
    thief.wait_for_load_state("domcontentloaded")
    assert not axe_violations(thief)
    thief.locator("#email").fill("lea@example.lu")
    thief.locator("button[type=submit]").click()
    thief.wait_for_load_state("domcontentloaded")
    assert thief.locator("h1").inner_text() == "Check your email"
    thief.screenshot(path=str(screenshot_dir / "customer-lost-card-answer-phone.png"), full_page=True)
    for ctx in (owner_ctx, thief_ctx, new_ctx):
        ctx.close()


def test_the_till_qr_opens_the_card_on_the_phone_once(live_server, browser, shop, factories, app, screenshot_dir,
                                                      tmp_path):
    base = live_server.url
    staff = factories.user(shop.vendor, role="staff")
    tablet_ctx = browser.new_context(viewport={"width": 1024, "height": 768}, locale="en-GB")
    tablet = tablet_ctx.new_page()
    ui_login(tablet, base, staff.email, staff.plain_password)
    card = shop.stamp_card
    tablet.goto(f"{base}/tablet?card={card.card_number}")
    tablet.locator("#staff-pin").fill("4321")
    tablet.get_by_role("button", name="Send the card to the customer's phone").click()
    qr = tablet.locator(".phone-link svg")
    qr.wait_for()
    tablet.screenshot(path=str(screenshot_dir / "tablet-phone-link.png"), full_page=True)
    png = tmp_path / "qr.png"
    qr.screenshot(path=str(png))
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(png)], capture_output=True, text=True, timeout=30)
    link = decoded.stdout.strip()
    assert link.startswith(f"{base}/s/"), decoded

    phone_ctx, phone = _phone(browser)
    phone.goto(link)
    phone.get_by_role("button", name="Open my card").click()
    phone.wait_for_load_state("domcontentloaded")
    assert phone.url.endswith(f"/c/{card.public_token}")
    phone.screenshot(path=str(screenshot_dir / "customer-card-from-till-qr-phone.png"), full_page=True)

    other_ctx, other = _phone(browser)
    response = other.goto(link)
    assert response.status == 410 and "Open my card" not in other.content()
    for ctx in (tablet_ctx, phone_ctx, other_ctx):
        ctx.close()

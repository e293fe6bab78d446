"""Journey 2: staff find a card and stamp it, see a cooldown refusal with its reason, and redeem a full card."""
import datetime as dt

import pytest
import time_machine

from browser_helpers import assert_accessible, shot, ui_login
from portal.services import clock

pytestmark = pytest.mark.browser


def test_staff_stamp_cooldown_and_redeem(live_server, browser, factories, screenshot_dir):
    vendor = factories.vendor("Café Tablet")
    program = factories.program(vendor, name="Coffee", stamps_required=3, cooldown_minutes=15, require_pin=True,
                                reward_text="A free coffee")
    factories.pin(program, "1357", "Anna")
    card = factories.card(program, name="Jean Weber", email="jean@example.lu")
    staff = factories.user(vendor, role="staff")
    base = live_server.url

    context = browser.new_context(viewport={"width": 768, "height": 1024}, locale="en-GB", has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = []
    page.on("console", lambda msg: errors.append(f"{msg.text} @ {msg.location}") if msg.type == "error" else None)
    try:
        ui_login(page, base, staff.email, staff.plain_password)
        assert page.url.endswith("/tablet")
        assert_accessible(page, "tablet (empty)")

        # Find by name (live search), then open the card.
        page.get_by_label("Card number, name, email or phone").fill("Jean")
        page.get_by_role("link", name="Jean Weber").click()
        panel = page.locator("section.panel")
        panel.wait_for()
        assert "0 / 3 stamps" in panel.inner_text()
        add = page.get_by_role("button", name="Add stamp")
        # The main action is visible on a 768×1024 tablet without scrolling.
        box = add.bounding_box()
        assert box["y"] + box["height"] <= 1024
        assert page.locator("[data-pinpad]").is_visible()
        assert_accessible(page, "tablet card panel")

        # Type the PIN on the pad and stamp: the panel updates in place (no page load).
        page.evaluate("window.__marker = 1")
        for digit in "1357":
            page.locator(f"[data-pinpad] button[data-digit='{digit}']").click()
        add.click()
        page.locator(".notice-success").wait_for()
        assert "Stamp added: 1 of 3" in panel.inner_text()
        assert page.evaluate("window.__marker") == 1
        assert page.locator(".wait[data-code='cooldown_active']").is_visible()
        shot(page, screenshot_dir, "tablet-stamped", full_page=False)

        # A second stamp right away is refused, with the reason and when it becomes possible.
        page.locator("#staff-pin").fill("1357")
        page.get_by_role("button", name="Add stamp").click()
        refusal = page.locator(".notice-refusal[data-code='cooldown_active']")
        refusal.wait_for()
        assert "Next stamp possible at" in refusal.inner_text()
        page.locator(".notice-refusal .countdown").wait_for()
        assert ":" in page.locator(".notice-refusal .countdown").inner_text()  # a running countdown
        shot(page, screenshot_dir, "tablet-cooldown", full_page=False)

        # A wrong PIN is explained with the attempts left.
        with time_machine.travel(clock.now() + dt.timedelta(minutes=16), tick=True):
            page.locator("#staff-pin").fill("0000")
            page.get_by_role("button", name="Add stamp").click()
            page.locator(".notice-refusal[data-code='pin_invalid']").wait_for()
            assert "attempt(s) left" in page.locator(".notice-refusal").inner_text()
            page.locator("#staff-pin").fill("1357")
            page.get_by_role("button", name="Add stamp").click()
            page.get_by_text("Stamp added: 2 of 3").wait_for()
        with time_machine.travel(clock.now() + dt.timedelta(minutes=40), tick=True):
            page.locator("#staff-pin").fill("1357")
            page.get_by_role("button", name="Add stamp").click()
            page.get_by_text("The reward is ready").wait_for()
            assert page.locator("p.ready").is_visible()
            shot(page, screenshot_dir, "tablet-full", full_page=False)
            page.locator("#staff-pin").fill("1357")
            page.get_by_role("button", name="Redeem").click()
            page.get_by_text("Reward redeemed: A free coffee.").wait_for()
            assert "0 / 3 stamps" in panel.inner_text()

        # Typing the card number (spaces allowed) opens the panel directly.
        page.get_by_label("Card number, name, email or phone").fill(
            f"{card.card_number[:3]} {card.card_number[3:6]} {card.card_number[6:]}")
        page.locator(f"section.panel[data-card='{card.card_number}']").wait_for()
        page.set_viewport_size({"width": 1024, "height": 768})
        shot(page, screenshot_dir, "tablet-landscape", full_page=False)
        assert page.get_by_role("button", name="Add stamp").bounding_box()["y"] < 768
        # Refusals answer with their HTTP status (429, 403…), which Chromium logs; anything else is a bug.
        assert not [e for e in errors if "Failed to load resource: the server responded with a status of 4" not in e], errors
    finally:
        context.close()

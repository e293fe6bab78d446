"""The Staff view in Chromium: an owner opens a person's week, unfolds a signal's transactions, marks it reviewed
with a note; the dashboard's badge arrives by htmx. Screenshots in test-output/screenshots/."""
from __future__ import annotations

import pytest

from tests.browser.browser_helpers import assert_accessible, shot, ui_login

from .conftest import WEEK

pytestmark = pytest.mark.browser


def test_owner_reviews_a_signal_in_the_staff_view(planted, live_server, page, screenshot_dir):
    vendor, owner, till = planted
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    base = live_server.url
    ui_login(page, base, vendor.owner.email, vendor.owner.plain_password)
    page.wait_for_selector("#staff-badge .badge")  # fetched by htmx after the dashboard
    page.goto(f"{base}/staff/people?week={WEEK}")
    assert page.locator("table.people tbody tr").count() == 6
    assert_accessible(page, "staff people")
    shot(page, screenshot_dir, "staff-people")
    page.get_by_role("link", name="Carl").click()
    page.wait_for_url("**/staff/person?name=Carl*")
    signal = page.locator("li.signal[data-kind=busy_hour]")
    assert "Carl made 30 stamps or redemptions" in signal.inner_text()
    signal.locator("summary").click()
    assert signal.locator("tr[data-tx]").count() == 30
    assert_accessible(page, "staff person")
    shot(page, screenshot_dir, "staff-person")
    signal.get_by_label("Note (what you found)").fill("Christmas market stand, checked with Carl")
    signal.get_by_role("button", name="Mark reviewed").click()
    page.wait_for_load_state("domcontentloaded")
    assert "The signal is marked reviewed." in page.locator(".flashes").inner_text()
    reviewed = page.locator("li.signal[data-kind=busy_hour]")
    assert "Christmas market stand" in reviewed.inner_text()
    shot(page, screenshot_dir, "staff-person-reviewed")
    page.goto(f"{base}/settings")
    assert page.locator("#f-opens_0").input_value() == "08:00"
    assert_accessible(page, "opening hours")
    shot(page, screenshot_dir, "shop-settings-hours")
    assert not errors, errors

"""Sessions in a real browser: an idle tablet goes to the login page with a message (also from an htmx request), a
copied cookie stops working at logout, and the owner's "Log out everywhere"."""
import datetime as dt

import pytest
import time_machine

from browser_helpers import assert_accessible, shot, ui_login
from portal.services import clock

pytestmark = pytest.mark.browser


def test_idle_tablet_goes_to_login(live_server, page, factories, screenshot_dir, console_errors):
    vendor = factories.vendor("Café Idle")
    factories.program(vendor, name="Coffee")
    staff = factories.user(vendor, role="staff")
    ui_login(page, live_server.url, staff.email, staff.plain_password)
    assert page.url.endswith("/tablet")
    with time_machine.travel(clock.now() + dt.timedelta(minutes=31), tick=True):
        # the live search is an htmx request: the whole page goes to the login form, not the results box
        page.get_by_label("Card number, name, email or phone").fill("Jean")
        page.wait_for_url("**/login")
        message = page.locator(".flash-info")
        message.wait_for()
        assert "You were logged out after 30 minutes without activity." in message.inner_text()
        assert_accessible(page, "login after idle")
        shot(page, screenshot_dir, "login-after-idle", full_page=False)
    assert not console_errors, console_errors


def test_copied_cookie_stops_at_logout_and_log_out_everywhere(live_server, browser, page, factories,
                                                              screenshot_dir, console_errors):
    vendor = factories.vendor("Café Sessions")
    ui_login(page, live_server.url, vendor.owner.email, vendor.owner.plain_password)
    thief = browser.new_context(locale="en-GB")
    thief.add_cookies(page.context.cookies())
    stolen = thief.new_page()
    try:
        stolen.goto(live_server.url + "/dashboard")
        assert stolen.url.endswith("/dashboard")

        page.goto(live_server.url + "/staff")
        page.get_by_role("button", name="Log out everywhere").click()
        page.locator(".flash-success").wait_for()
        assert "You stay logged in here." in page.locator(".flash-success").inner_text()
        assert page.url.endswith("/staff")
        assert_accessible(page, "staff page after log out everywhere")
        shot(page, screenshot_dir, "staff-logout-everywhere")
        stolen.goto(live_server.url + "/dashboard")
        assert "/login" in stolen.url

        thief.clear_cookies()
        thief.add_cookies(page.context.cookies())  # a fresh copy of the current session
        stolen.goto(live_server.url + "/dashboard")
        assert stolen.url.endswith("/dashboard")
        page.get_by_role("button", name="Log out", exact=True).click()
        page.locator(".flash-info").wait_for()
        assert "You are logged out." in page.locator(".flash-info").inner_text()
        stolen.goto(live_server.url + "/dashboard")
        assert "/login" in stolen.url
    finally:
        thief.close()
    assert not console_errors, console_errors

"""Journey 3: an operator suspends a vendor; that vendor's pages and API stop at once. Plus axe on the pages not
covered by the other journeys (login, customers, card detail, admin)."""
import pytest
from playwright.sync_api import expect

from browser_helpers import assert_accessible, shot, ui_login

pytestmark = pytest.mark.browser


def test_admin_suspends_vendor(live_server, browser, page, factories, screenshot_dir, console_errors):
    vendor = factories.vendor("Fleurs Schmit")
    program = factories.program(vendor, name="Flower card")
    card = factories.card(program, name="Marie Schmit")
    from portal.extensions import db
    from portal.services import operations

    operations.add_stamps(factories.owner_actor(vendor), card.card_number, {})
    operations.adjust(factories.owner_actor(vendor), card.card_number, {"delta": 2, "reason": "Paper card"})
    db.session.commit()
    key = factories.api_key(vendor)
    admin = factories.user(None, role="admin")
    owner = vendor.owner
    base = live_server.url

    # The owner is logged in (another browser) and sees their pages.
    owner_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    owner_page = owner_context.new_page()
    owner_page.set_default_timeout(10_000)
    try:
        page.goto(base + "/login")
        assert_accessible(page, "login")
        shot(page, screenshot_dir, "login")
        ui_login(owner_page, base, owner.email, owner.plain_password)
        owner_page.goto(base + "/customers")
        assert_accessible(owner_page, "customers")
        shot(owner_page, screenshot_dir, "owner-customers")
        owner_page.get_by_role("link", name=card.card_number[:3], exact=False).first.click()
        owner_page.wait_for_url(f"**/customers/{card.card_number}")
        assert_accessible(owner_page, "card detail")
        shot(owner_page, screenshot_dir, "owner-card")
        owner_page.goto(base + "/dashboard")
        shot(owner_page, screenshot_dir, "owner-dashboard-data")
        assert owner_page.request.get(base + "/api/v1/vendor/loyalty/programs",
                                      headers={"Authorization": f"Bearer {key}"}).status == 200

        # The operator suspends the vendor.
        ui_login(page, base, admin.email, admin.plain_password)
        assert page.url.endswith("/admin/")
        assert_accessible(page, "admin vendors")
        page.get_by_role("link", name="Suspend Fleurs Schmit").click()  # a confirmation step first
        page.wait_for_load_state("domcontentloaded")
        assert_accessible(page, "suspend confirmation")
        page.get_by_role("button", name="Yes, suspend").click()
        page.wait_for_load_state("domcontentloaded")
        row = page.locator("tr[data-vendor]", has_text="Fleurs Schmit")
        assert "Suspended" in row.inner_text()
        shot(page, screenshot_dir, "admin-vendors")
        for path, name in (("/admin/programs", "admin programs"), ("/admin/stats", "admin stats"),
                           ("/admin/ledger", "admin ledger")):
            page.goto(base + path)
            assert_accessible(page, name)
        page.get_by_role("button", name="Verify now").click()
        page.locator("[data-ledger='ok']").wait_for()
        shot(page, screenshot_dir, "admin-ledger")

        # The owner's open session stops working, and so does the vendor's API key.
        response = owner_page.goto(base + "/customers")
        assert response.status == 403
        assert "suspended" in owner_page.locator("main").inner_text()
        api = owner_page.request.get(base + "/api/v1/vendor/loyalty/programs",
                                     headers={"Authorization": f"Bearer {key}"})
        assert api.status == 403 and api.json()["error"]["code"] == "vendor_suspended"
        # The public enrolment page of the program is gone too (the public API answers 404).
        assert owner_page.request.get(base + f"/api/v1/loyalty/programs/{program.slug}").status == 404

        # Reactivated: everything works again.
        page.goto(base + "/admin/")
        page.get_by_role("button", name="Reactivate Fleurs Schmit").click()
        page.wait_for_load_state("domcontentloaded")
        assert owner_page.goto(base + "/customers").status == 200
        assert not console_errors, console_errors
    finally:
        owner_context.close()


def test_phone_width_layout(live_server, browser, factories, screenshot_dir):
    vendor = factories.vendor("Small screen")
    program = factories.program(vendor, name="Phone card")
    factories.card(program, name="Phone customer")
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        ui_login(page, live_server.url, vendor.owner.email, vendor.owner.plain_password)
        for path, name in (("/dashboard", "phone-dashboard"), ("/programs/new", "phone-program-form"),
                           ("/tablet", "phone-tablet"), ("/staff", "phone-staff")):
            page.goto(live_server.url + path)
            # Nothing wider than the screen (tables scroll inside their own box).
            assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
            shot(page, screenshot_dir, name)
    finally:
        context.close()


def test_points_pages_accessible(live_server, page, factories, screenshot_dir, console_errors):
    vendor = factories.vendor("Bakery points")
    program = factories.program(vendor, type="points", name="Bread points", require_pin=True)
    factories.pin(program, "2468", "Paul")
    card = factories.card(program, name="Points Customer")
    ui_login(page, live_server.url, vendor.owner.email, vendor.owner.plain_password)
    page.goto(live_server.url + f"/programs/{program.id}/edit")
    # Inline validation of a catalog row: the message appears next to that row.
    page.locator("#reward-cost-1").fill("zero")
    page.locator("#reward-cost-1").blur()
    page.locator("#reward-0-points_cost-error").get_by_text("Must be a whole number.").wait_for()
    expect(page.locator("#reward-cost-1")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "points program form")
    shot(page, screenshot_dir, "owner-points-form")
    page.goto(live_server.url + f"/tablet?card={card.card_number}")
    page.locator("#amount").fill("12.50")
    page.locator("#staff-pin").fill("2468")
    page.get_by_role("button", name="Add points").click()
    page.get_by_text("12 points added").wait_for()
    assert_accessible(page, "tablet points panel")
    shot(page, screenshot_dir, "tablet-points", full_page=False)
    assert not console_errors, console_errors

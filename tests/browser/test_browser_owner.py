"""Journey 1: an owner logs in, creates a stamp program and a staff PIN, and prints the enrolment poster."""
import re
import subprocess

import pytest

from browser_helpers import assert_accessible, shot, ui_login

pytestmark = pytest.mark.browser


def test_owner_creates_program_pin_and_poster(live_server, page, factories, screenshot_dir, console_errors, tmp_path):
    vendor = factories.vendor("Boulangerie Lux", locale="fr")
    owner = vendor.owner
    base = live_server.url

    ui_login(page, base, owner.email, owner.plain_password)
    assert page.url.endswith("/dashboard")
    assert_accessible(page, "dashboard")
    shot(page, screenshot_dir, "owner-dashboard")

    # Create a stamp program through the form, with inline validation first.
    page.goto(base + "/programs/new?type=stamps&lang=en")
    page.locator("#f-name").fill("Café fidélité")
    page.locator("#f-stamps_required").fill("0")
    page.locator("#f-stamps_required").blur()
    error = page.locator("#stamps_required-error")
    error.wait_for()
    assert "between 1 and 100" in error.inner_text()
    page.locator("#f-stamps_required").fill("8")
    page.locator("#f-reward_text").fill("Un café offert")
    page.locator("#f-reward_text").blur()
    page.locator("#stamps_required-error").wait_for(state="hidden")
    assert page.locator("svg.card-preview circle").count() == 8
    assert_accessible(page, "program form")
    shot(page, screenshot_dir, "owner-program-form")
    page.get_by_role("button", name="Create the program").click()
    page.wait_for_url("**/programs/*/edit")
    assert "was created" in page.locator(".flashes").inner_text()

    page.goto(base + "/programs")
    assert_accessible(page, "programs")
    shot(page, screenshot_dir, "owner-programs")

    # A staff PIN, shown once.
    page.goto(base + "/staff")
    page.locator("#f-staff_name").fill("Marie")
    page.get_by_label("PIN (optional)").fill("2468")
    page.get_by_role("button", name="Add the PIN").click()
    pin = page.locator("[data-new-pin]")
    pin.wait_for()
    assert pin.inner_text() == "2468"
    assert_accessible(page, "staff")
    shot(page, screenshot_dir, "owner-staff")
    page.reload()
    assert page.locator("[data-new-pin]").count() == 0
    assert "Marie" in page.locator("main").inner_text()

    # The poster, in the shop's language (French), with a QR code that decodes to the enrolment URL.
    page.goto(base + "/programs")
    page.get_by_role("link", name="QR poster Café fidélité").click()
    page.wait_for_url("**/poster")
    poster = page.locator("article.poster")
    assert poster.get_attribute("lang") == "fr"
    assert_accessible(page, "poster")
    shot(page, screenshot_dir, "owner-poster")
    page.emulate_media(media="print")
    shot(page, screenshot_dir, "owner-poster-print")
    page.emulate_media(media="screen")
    # Printed: exactly one page of the chosen paper size (CSS @page), A4 and A5. (A fresh tab: media emulation
    # would otherwise stay forced to "screen" for page.pdf().)
    program_url = page.url.rsplit("/poster", 1)[0]
    print_tab = page.context.new_page()
    for size, (width, height) in (("a4", (595, 842)), ("a5", (420, 595))):
        print_tab.goto(page.url.split("?")[0] + f"?size={size}")
        pdf = print_tab.pdf(prefer_css_page_size=True)
        assert re.findall(rb"/Count (\d+)", pdf) == [b"1"], size  # one page
        boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
        assert (round(float(boxes[0][0])), round(float(boxes[0][1]))) == (width, height), size
    # The SVG download decodes to the same URL once drawn by the browser.
    svg = print_tab.request.get(program_url + "/qr.svg?download=1")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["content-disposition"].startswith("attachment")
    print_tab.goto(program_url + "/qr.svg")
    print_tab.screenshot(path=str(tmp_path / "qr-svg.png"))
    svg_decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(tmp_path / "qr-svg.png")], capture_output=True,
                                 text=True, check=True)
    print_tab.close()
    png = page.request.get(program_url + "/qr.png?scale=8")
    assert png.ok and png.headers["content-type"] == "image/png"
    path = tmp_path / "qr.png"
    path.write_bytes(png.body())
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True)
    from portal.models import LoyaltyProgram
    from portal.extensions import db

    db.session.rollback()  # see what the server thread committed
    program = db.session.query(LoyaltyProgram).filter_by(name="Café fidélité").one()
    assert decoded.stdout.strip() == f"{base}/p/{program.slug}" == page.locator(".poster-url").inner_text()
    assert svg_decoded.stdout.strip() == decoded.stdout.strip()
    assert not console_errors, console_errors


def test_owner_replaces_and_merges_cards(live_server, page, factories, screenshot_dir, console_errors):
    """Issue 14: a lost phone's card replaced, then a duplicate merged into it — each behind a confirmation."""
    vendor = factories.vendor("Café Replace")
    program = factories.program(vendor, name="Coffee card")
    card = factories.card(program, name="Marie Schmit", email="marie@example.lu")
    twin = factories.card(program, name="Marie Schmit", email=None, phone="+352 691 000 111")
    old, twin_number = card.card_number, twin.card_number
    base = live_server.url
    ui_login(page, base, vendor.owner.email, vendor.owner.plain_password)

    page.goto(base + f"/customers/{old}")
    page.get_by_role("link", name="Replace this card").click()
    page.wait_for_url(f"**/customers/{old}/replace")
    assert_accessible(page, "replace confirmation")
    page.locator("#f-reason").fill("Phone stolen")
    shot(page, screenshot_dir, "owner-card-replace")
    page.get_by_role("button", name="Yes, replace this card").click()
    page.wait_for_load_state("domcontentloaded")
    new = re.search(r"/customers/(\d{10})$", page.url).group(1)
    assert new != old and "Phone stolen" in page.locator("main").inner_text()

    page.goto(base + f"/customers/{twin_number}/merge")
    assert_accessible(page, "merge: choose")
    page.get_by_role("link", name=f"{new[:3]} {new[3:6]} {new[6:]}").click()
    page.get_by_role("button", name="Yes, merge the cards").wait_for()
    assert_accessible(page, "merge: confirm")
    shot(page, screenshot_dir, "owner-card-merge")
    page.get_by_role("button", name="Yes, merge the cards").click()
    page.wait_for_url(f"**/customers/{new}")
    assert "was merged into this card" in page.locator("body").inner_text()
    assert page.goto(base + f"/customers/{old}").status == 410
    console_errors[:] = [e for e in console_errors if "410" not in e]  # the page above is meant to be a 410
    assert not console_errors, console_errors

"""The owner's forms are Flask-WTF forms: a field the form refuses shows its message next to the field, in the
page's one error slot (``macros/forms.html``: ``errors_for``), and nothing is written."""
import pytest

from browser_helpers import assert_accessible, shot, ui_login

pytestmark = pytest.mark.browser


def test_a_refused_correction_shows_the_message_next_to_its_field(live_server, page, factories, screenshot_dir,
                                                                  console_errors):
    vendor = factories.vendor("Épicerie Fine")
    program = factories.program(vendor, name="Coffee card")
    card = factories.card(program, name="Lena Weber")
    ui_login(page, live_server.url, vendor.owner.email, vendor.owner.plain_password)
    page.goto(f"{live_server.url}/customers/{card.card_number}?lang=en")
    page.locator("#f-delta").fill("1" * 13)  # longer than the form allows
    page.locator("#f-reason").fill("Paper card")
    page.get_by_role("button", name="Record the correction").click()
    page.wait_for_load_state("domcontentloaded")
    error = page.locator("#delta-error")
    assert error.inner_text() == "At most 12 characters."
    assert page.locator("#f-delta").get_attribute("aria-invalid") == "true"
    assert page.locator("#f-delta").get_attribute("aria-describedby") == "delta-error"
    assert page.locator("#f-reason").input_value() == "Paper card"  # what was typed stays
    assert page.locator("#reason-error").inner_text() == ""
    assert_accessible(page, "card page with a refused correction")
    shot(page, screenshot_dir, "owner-correction-field-error")
    # The refused post answers 422 (Chromium logs that status); nothing else may go wrong on the page.
    assert not [e for e in console_errors if "status of 422" not in e], console_errors

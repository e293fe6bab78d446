"""Customers' pages follow the customer: ``?lang=`` → the choice kept in the session → the card's language →
``Accept-Language`` by its q-values → the shop's language → English. Each step is tested on the enrolment page
(``/p/<slug>``, no card) and on the card's page (``/c/<token>``)."""
from __future__ import annotations

import pytest

from .test_locale_selection import html_lang


def _shop(factories, locale):
    vendor = factories.vendor(locale=locale)
    return factories.program(vendor)


def _set_locale(row, locale):
    """A language the app no longer offers (an old row): the selector must skip it, not show it."""
    from portal.extensions import db

    row.locale = locale
    db.session.commit()


# --- /p/<slug> ---------------------------------------------------------------------------------------------------

def test_enrolment_speaks_the_shops_language_without_any_hint(factories, client, translations):
    program = _shop(factories, "fr")
    page = client.get(f"/p/{program.slug}")
    assert html_lang(page) == "fr"
    assert translations["fr"]["Language of your card"] in page.get_data(as_text=True)


@pytest.mark.parametrize("header, wanted", [
    ("de-LU,de;q=0.9", "de"),
    ("de", "de"),
    ("en-GB,en;q=0.8", "en"),
    ("lu", "lb"), ("lb-LU", "lb"), ("lu-LU,lu;q=0.9", "lb"),
    ("fr;q=0.3, de;q=0.9", "de"),  # the q-values decide, not the order
    ("es, it;q=0.9, de;q=0.5", "de"),  # the best language we have
])
def test_enrolment_follows_the_browsers_language_before_the_shops(factories, client, translations, header, wanted):
    program = _shop(factories, "fr" if wanted != "fr" else "en")
    page = client.get(f"/p/{program.slug}", headers={"Accept-Language": header})
    assert page.status_code == 200
    assert html_lang(page) == wanted
    assert translations[wanted]["Language of your card"] in page.get_data(as_text=True)


@pytest.mark.parametrize("header", ["es, it;q=0.5", "*", "de;q=0"])
def test_enrolment_falls_back_to_the_shops_language(factories, client, header):
    program = _shop(factories, "lb")
    assert html_lang(client.get(f"/p/{program.slug}", headers={"Accept-Language": header})) == "lb"


def test_lost_card_page_follows_the_browser_then_the_shop(factories, client):
    program = _shop(factories, "fr")
    assert html_lang(client.get(f"/p/{program.slug}/lost", headers={"Accept-Language": "de-LU,de;q=0.9"})) == "de"
    assert html_lang(client.get(f"/p/{program.slug}/lost", headers={"Accept-Language": "es"})) == "fr"


def test_enrolment_query_beats_the_browser_and_is_kept_in_the_session(factories, client):
    program = _shop(factories, "fr")
    assert html_lang(client.get(f"/p/{program.slug}?lang=lu", headers={"Accept-Language": "de"})) == "lb"
    assert html_lang(client.get(f"/p/{program.slug}", headers={"Accept-Language": "de"})) == "lb"


def test_enrolment_preselects_the_browsers_language_for_the_card(factories, client):
    program = _shop(factories, "fr")
    html = client.get(f"/p/{program.slug}", headers={"Accept-Language": "de-LU,de;q=0.9"}).get_data(as_text=True)
    assert 'value="de" selected' in html or 'selected value="de"' in html, html


def test_enrolment_is_english_when_nothing_else_applies(factories, client):
    program = _shop(factories, "fr")
    _set_locale(program.vendor, "es")
    assert html_lang(client.get(f"/p/{program.slug}", headers={"Accept-Language": "it"})) == "en"


def test_the_shops_language_does_not_follow_the_visitor_to_other_pages(factories, client):
    program = _shop(factories, "fr")
    assert html_lang(client.get(f"/p/{program.slug}")) == "fr"
    assert html_lang(client.get("/login")) == "en"


# --- /c/<token> --------------------------------------------------------------------------------------------------

def test_card_page_query_beats_the_card_and_is_kept_in_the_session(factories, client, translations):
    card = factories.card(_shop(factories, "fr"), locale="de")
    page = client.get(f"/c/{card.public_token}?lang=lu", headers={"Accept-Language": "fr"})
    assert html_lang(page) == "lb"
    assert html_lang(client.get(f"/c/{card.public_token}", headers={"Accept-Language": "fr"})) == "lb"


def test_card_page_choice_made_on_the_enrolment_page_is_kept(factories, client):
    program = _shop(factories, "fr")
    card = factories.card(program, locale="de")
    client.get(f"/p/{program.slug}?lang=en")
    assert html_lang(client.get(f"/c/{card.public_token}")) == "en"


def test_card_page_speaks_the_cards_language_before_the_browsers(factories, client, translations):
    card = factories.card(_shop(factories, "fr"), locale="lb")
    page = client.get(f"/c/{card.public_token}", headers={"Accept-Language": "de-LU,de;q=0.9"})
    assert html_lang(page) == "lb"
    assert translations["lb"]["Card number"] in page.get_data(as_text=True)


def test_card_page_without_a_language_of_ours_follows_the_browser(factories, client, translations):
    card = factories.card(_shop(factories, "fr"), locale="de")
    _set_locale(card, "es")
    page = client.get(f"/c/{card.public_token}", headers={"Accept-Language": "es, lb;q=0.4, de;q=0.8"})
    assert html_lang(page) == "de"
    assert translations["de"]["Card number"] in page.get_data(as_text=True)


def test_card_page_without_a_language_of_ours_then_speaks_the_shops(factories, client):
    card = factories.card(_shop(factories, "fr"), locale="de")
    _set_locale(card, "es")
    assert html_lang(client.get(f"/c/{card.public_token}", headers={"Accept-Language": "es"})) == "fr"
    assert html_lang(client.get(f"/c/{card.public_token}")) == "fr"


def test_card_page_is_english_when_nothing_else_applies(factories, client):
    card = factories.card(_shop(factories, "fr"), locale="de")
    _set_locale(card, "es")
    _set_locale(card.program.vendor, "it")
    assert html_lang(client.get(f"/c/{card.public_token}", headers={"Accept-Language": "pt"})) == "en"


# --- staff pages keep their order --------------------------------------------------------------------------------

def test_login_page_follows_the_browsers_q_values(client):
    assert html_lang(client.get("/login", headers={"Accept-Language": "fr;q=0.3, de;q=0.9"})) == "de"


def test_staff_pages_keep_the_shops_language_before_the_browsers(factories, login_as):
    vendor = factories.vendor(locale="fr")
    owner = login_as(vendor.owner.email, vendor.owner.plain_password)
    assert html_lang(owner.get("/dashboard", headers={"Accept-Language": "de-LU,de;q=0.9"})) == "fr"

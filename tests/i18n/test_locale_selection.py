"""Which language a request gets: ?lang= (kept in the session), the user's preference, the page's default (the
shop's language on staff pages and posters, the card's for customers), Accept-Language, the shop's language for API
clients, else English — and ``lu`` is Luxembourgish (``lb``) wherever a language is given."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.services.i18n import normalise_locale

from support import csrf_from, field_value

LANG_RE = re.compile(r'<html lang="([^"]+)"')


def html_lang(response) -> str:
    match = LANG_RE.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:300]
    return match.group(1)


@pytest.mark.parametrize("given, wanted", [
    ("lu", "lb"), ("LU", "lb"), ("lb", "lb"), ("lb-LU", "lb"), ("lu-LU", "lb"), ("ltz", "lb"), ("lb_LU", "lb"),
    ("fr-LU", "fr"), ("de-LU", "de"), ("de-AT", "de"), ("en-GB", "en"), ("xx", None), ("", None), (None, None),
])
def test_normalise_locale(given, wanted):
    assert normalise_locale(given) == wanted


@pytest.mark.parametrize("header", ["lu", "lu-LU,lu;q=0.9", "xx, lu;q=0.8, fr;q=0.5", "lb-LU"])
def test_accept_language_lu_is_luxembourgish(client, header, translations):
    response = client.get("/login", headers={"Accept-Language": header})
    assert response.status_code == 200
    assert html_lang(response) == "lb"
    assert translations["lb"]["Log in"] in response.get_data(as_text=True)


def test_query_lu_is_luxembourgish_and_kept_in_the_session(client, translations):
    response = client.get("/login?lang=lu")
    assert html_lang(response) == "lb"
    assert translations["lb"]["Log in"] in response.get_data(as_text=True)
    again = client.get("/login", headers={"Accept-Language": "fr"})  # the explicit choice beats the browser
    assert html_lang(again) == "lb"
    assert html_lang(client.get("/login?lang=de")) == "de"
    assert html_lang(client.get("/login")) == "de"


def test_unknown_query_language_is_ignored(client):
    client.get("/login?lang=fr")
    assert html_lang(client.get("/login?lang=klingon")) == "fr"


def test_english_without_any_hint(client, translations):
    response = client.get("/login")
    assert html_lang(response) == "en"
    assert "Log in" in response.get_data(as_text=True)


def test_api_enrol_with_lu_keeps_lb_on_the_card(app, factories, client):
    from portal.extensions import db
    from portal.models import LoyaltyCard

    vendor = factories.vendor(locale="fr")
    program = factories.program(vendor)
    response = client.post(f"/api/v1/loyalty/programs/{program.slug}/enroll",
                           json={"name": "Jang", "email": "jang@example.lu", "locale": "lu", "consent": True})
    assert response.status_code == 201, response.get_json()
    db.session.rollback()
    card = db.session.scalars(select(LoyaltyCard).where(LoyaltyCard.customer_email == "jang@example.lu")).one()
    assert card.locale == "lb"
    # and the card's page speaks Luxembourgish to its owner
    page = client.get(f"/c/{card.public_token}")
    assert page.status_code == 200
    assert html_lang(page) == "lb"


def test_api_enrol_with_an_unknown_locale_is_refused_in_the_callers_language(factories, client, translations):
    vendor = factories.vendor(locale="en")
    program = factories.program(vendor)
    response = client.post(f"/api/v1/loyalty/programs/{program.slug}/enroll",
                           json={"name": "Jang", "email": "jang@example.lu", "locale": "tlh"},
                           headers={"Accept-Language": "de"})
    body = response.get_json()
    assert response.status_code == 422, body
    assert body["error"]["code"] == "validation_error"
    expected = translations["de"]["Must be one of: %(choices)s."] % {"choices": "en, fr, de, lb"}
    assert body["error"]["fields"]["locale"] == [expected]


def test_enrolment_form_lu_keeps_lb_on_the_card(app, factories, client, translations):
    from portal.extensions import db
    from portal.models import LoyaltyCard

    app.config["ENROLL_MIN_FORM_SECONDS"] = 0
    vendor = factories.vendor(locale="de")
    program = factories.program(vendor)
    page = client.get(f"/p/{program.slug}?lang=lu")
    assert html_lang(page) == "lb"
    html = page.get_data(as_text=True)
    assert translations["lb"]["Language of your card"] in html
    issued = field_value(html, "issued")
    assert issued, "the enrolment form has no signed timestamp field"
    response = client.post(f"/p/{program.slug}", data={
        "csrf_token": csrf_from(html), "issued": issued, "website": "",
        "name": "Lis", "email": "lis@example.lu", "locale": "lu", "consent": "y"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:2000]
    db.session.rollback()
    card = db.session.scalars(select(LoyaltyCard).where(LoyaltyCard.customer_email == "lis@example.lu")).one()
    assert card.locale == "lb"


def test_the_card_page_speaks_the_cards_language(factories, client, translations):
    vendor = factories.vendor(locale="fr")
    program = factories.program(vendor)
    card = factories.card(program, locale="de")
    page = client.get(f"/c/{card.public_token}", headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    assert html_lang(page) == "de"
    assert translations["de"]["Your card"] in page.get_data(as_text=True) or \
        translations["de"]["Card number"] in page.get_data(as_text=True)
    # the customer's own choice wins
    assert html_lang(client.get(f"/c/{card.public_token}?lang=lu")) == "lb"


def test_staff_pages_default_to_the_shops_language(factories, login_as, translations):
    vendor = factories.vendor(locale="lb")
    owner = login_as(vendor.owner.email, vendor.owner.plain_password)
    page = owner.get("/dashboard", headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    assert html_lang(page) == "lb"
    assert translations["lb"]["Dashboard"] in page.get_data(as_text=True)
    # the owner may read the portal in another language
    assert html_lang(owner.get("/dashboard?lang=de")) == "de"


def test_the_poster_speaks_the_shops_language(factories, login_as, translations):
    vendor = factories.vendor(locale="fr")
    program = factories.program(vendor)
    owner = login_as(vendor.owner.email, vendor.owner.plain_password, lang="de")
    page = owner.get(f"/programs/{program.id}/poster")
    assert page.status_code == 200
    assert html_lang(page) == "fr"


def test_api_messages_default_to_the_shops_language(factories, make_api, translations):
    from portal.services.cards import luhn_check_digit

    vendor = factories.vendor(locale="de")
    api = make_api(factories.api_key(vendor))
    number = "123456789" + luhn_check_digit("123456789")  # a valid number that does not exist
    response = api.get(f"/api/v1/vendor/loyalty/cards/{number}")
    body = response.get_json()
    assert response.status_code == 404, body
    assert body["error"]["code"] == "not_found"
    assert body["error"]["message"] != "Not found."
    assert body["error"]["message"] in {translations["de"][m] for m in ("Not found.", "No card with this number.")}
    # and Accept-Language wins over the shop's language, lu included
    lb = api.get(f"/api/v1/vendor/loyalty/cards/{number}", headers={"Accept-Language": "lu"}).get_json()
    assert lb["error"]["code"] == "not_found"
    assert lb["error"]["message"] in {translations["lb"][m] for m in ("Not found.", "No card with this number.")}


def test_cli_create_vendor_accepts_lu(runner):
    import json

    result = runner.invoke(args=["loyalty", "create-vendor", "--name", "Bäckerei Lëtz", "--owner-email",
                                 "lea@example.lu", "--owner-password", "a-long-password-1", "--locale", "lu",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["locale"] == "lb"


def test_customer_import_accepts_lu(factories):
    from portal.services import cards

    vendor = factories.vendor()
    program = factories.program(vendor)
    card, _ = cards.enroll(program, {"name": "Mett", "email": "mett@example.lu", "locale": "lu"})
    assert card.locale == "lb"

"""Self-enrolment from the poster URL (/p/<slug>): form, bot guard, consent, CSRF, duplicates, locales."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine

from portal.extensions import db
from portal.models import LoyaltyCard, MailOutbox, WalletOutbox

from .conftest import enrol, form_fields

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def app_config(request):
    # The 2-second bot guard is tested on its own below; elsewhere forms may be sent at once.
    return {"ENROLL_MIN_FORM_SECONDS": 0, **getattr(request, "param", {})}


@pytest.fixture
def vendor(factories):
    return factories.vendor("Boulangerie Schmit", locale="fr")


@pytest.fixture
def program(factories, vendor):
    return factories.program(vendor, name="Carte café", stamps_required=8, reward_text="un café offert")


def _cards():
    db.session.rollback()
    return db.session.scalars(db.select(LoyaltyCard).order_by(LoyaltyCard.id)).all()


def test_poster_page_shows_program_and_form(client, program):
    r = client.get(f"/p/{program.slug}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200, html
    assert "Carte café" in html and "Boulangerie Schmit" in html and "un café offert" in html
    assert 'name="csrf_token"' in html and 'name="issued"' in html and 'name="website"' in html
    assert 'name="consent"' in html and 'type="checkbox"' in html
    # The page speaks the shop's language by default (the vendor is French-speaking).
    assert '<html lang="fr">' in html
    assert re.search(r'<option (?=[^>]*selected)(?=[^>]*value="fr")[^>]*>', html)
    assert "<script>" not in html and "style=" not in html  # strict CSP: no inline scripts or styles
    assert r.headers["Cache-Control"] == "no-store"


def test_enrol_creates_a_card_and_lands_on_it(client, program):
    r = enrol(client, program.slug, name="Léa Muller", email="Lea@Example.lu", locale="lu")
    assert r.status_code == 303
    (card,) = _cards()
    assert r.headers["Location"].endswith(f"/c/{card.public_token}")
    assert card.customer_name == "Léa Muller" and card.customer_email == "lea@example.lu"
    assert card.locale == "lb"  # "lu" is accepted as Luxembourgish
    assert db.session.scalar(db.select(db.func.count()).select_from(WalletOutbox)) == 1
    page = client.get(r.headers["Location"])
    assert page.status_code == 200 and "Welcome!" in page.get_data(as_text=True)


def test_same_email_or_phone_again_reveals_nothing_and_makes_no_second_card(client, program):
    first = enrol(client, program.slug, name="Léa", email="lea@example.lu", phone="621 123 456")
    assert first.status_code == 303
    (card,) = _cards()
    again = enrol(client, program.slug, name="Someone", email="LEA@example.lu")
    by_phone = enrol(client, program.slug, phone="+352 621 123 456")
    for response in (again, by_phone):
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and "Location" not in response.headers
        assert "Check your email" in html  # the card has an email on file: a sign-in link went there
        assert card.public_token not in html and card.card_number not in html and "/c/" not in html
    assert len(_cards()) == 1
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(MailOutbox)) == 2


def test_a_form_is_accepted_once(client, program):
    page = client.get(f"/p/{program.slug}?lang=en")
    fields = form_fields(page.get_data(as_text=True))
    body = {**fields, "consent": "y", "locale": "en", "website": ""}
    assert client.post(f"/p/{program.slug}", data={**body, "email": "one@example.lu"}).status_code == 303
    replay = client.post(f"/p/{program.slug}", data={**body, "email": "two@example.lu"})
    assert replay.status_code == 400 and "already sent" in replay.get_data(as_text=True)
    assert [c.customer_email for c in _cards()] == ["one@example.lu"]
    # A form that was refused (here: no consent) was not used up; the next form shown is a new one.
    page = client.get(f"/p/{program.slug}?lang=en")
    fields = form_fields(page.get_data(as_text=True))
    refused = client.post(f"/p/{program.slug}", data={**fields, "locale": "en", "website": "", "email": "t@x.lu"})
    assert refused.status_code == 422
    assert client.post(f"/p/{program.slug}", data={**fields, "consent": "y", "locale": "en", "website": "",
                                                   "email": "three@example.lu"}).status_code == 303


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "ENROLL_RATE_LIMIT": "100 per hour",
                                         "ENROLL_PROGRAM_RATE_LIMIT": "3 per hour"}], indirect=True)
def test_enrolment_is_rate_limited_per_program_across_ips_and_edges(client, app, program, factories, vendor):
    api = f"/api/v1/loyalty/programs/{program.slug}/enroll"
    for i in range(5):  # refused posts do not use up the program's budget
        assert app.test_client().post(api, json={"email": "junk"}, environ_base={
            "REMOTE_ADDR": f"203.0.113.{100 + i}"}).status_code == 422
    statuses = [app.test_client().post(api, json={"email": f"p{i}@example.lu", "consent": True},
                                       environ_base={"REMOTE_ADDR": f"203.0.113.{i}"}).status_code
                for i in range(2)]
    other_ip = app.test_client()
    page = other_ip.get(f"/p/{program.slug}?lang=en", environ_base={"REMOTE_ADDR": "203.0.113.50"})
    body = {**form_fields(page.get_data(as_text=True)), "consent": "y", "locale": "en", "website": ""}
    statuses.append(other_ip.post(f"/p/{program.slug}", data={**body, "email": "html@example.lu"},
                                  environ_base={"REMOTE_ADDR": "203.0.113.50"}).status_code)
    statuses.append(app.test_client().post(api, json={"email": "p9@example.lu", "consent": True},
                                           environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code)
    assert statuses == [201, 201, 303, 429]
    other = factories.program(vendor, name="Other card")
    assert app.test_client().post(f"/api/v1/loyalty/programs/{other.slug}/enroll",
                                  json={"email": "p9@example.lu", "consent": True},
                                  environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 201


def test_consent_is_required(client, program):
    r = enrol(client, program.slug, name="Léa", email="lea@example.lu", consent=None)
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'id="consent-error">[^<]*tick this box[^<]*</p>', html)  # in the consent's error slot
    assert _cards() == []


def test_contact_is_required_and_errors_sit_next_to_the_inputs(client, program):
    r = enrol(client, program.slug, name="Léa", email="not-an-email")
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'id="email-error">[^<]+</p>', html) and 'aria-invalid="true"' in html
    assert 'value="Léa"' in html  # what was typed is kept
    r = enrol(client, program.slug, name="Léa")
    assert r.status_code == 422 and re.search(r'id="email-error">[^<]+</p>', r.get_data(as_text=True))
    assert _cards() == []


def test_csrf_token_is_required(client, program):
    page = client.get(f"/p/{program.slug}")
    fields = form_fields(page.get_data(as_text=True))
    r = client.post(f"/p/{program.slug}", data={"issued": fields["issued"], "consent": "y", "email": "a@b.lu"})
    assert r.status_code == 400
    assert _cards() == []


def test_honeypot_refuses_with_a_clear_message(client, program):
    r = enrol(client, program.slug, email="bot@example.com", website="http://spam.example")
    assert r.status_code == 400
    assert "Leave this field empty" in r.get_data(as_text=True)
    assert _cards() == []


@pytest.mark.parametrize("app_config", [{"ENROLL_MIN_FORM_SECONDS": 2}], indirect=True)
def test_too_fast_is_refused_then_accepted_after_two_seconds(client, program):
    start = dt.datetime.now(dt.timezone.utc)
    with time_machine.travel(start, tick=False):
        page = client.get(f"/p/{program.slug}?lang=en")
        fields = form_fields(page.get_data(as_text=True))
        body = {**fields, "email": "lea@example.lu", "consent": "y", "locale": "fr", "website": ""}
        r = client.post(f"/p/{program.slug}", data=body)
        assert r.status_code == 400 and "very fast" in r.get_data(as_text=True)
        assert _cards() == []
    with time_machine.travel(start + dt.timedelta(seconds=2.5), tick=False):
        r = client.post(f"/p/{program.slug}", data=body)
        assert r.status_code == 303
    assert len(_cards()) == 1


def test_forged_stale_or_foreign_form_stamps_are_refused(client, program, factories, vendor):
    start = dt.datetime.now(dt.timezone.utc)
    with time_machine.travel(start, tick=False):
        page = client.get(f"/p/{program.slug}?lang=en")
        fields = form_fields(page.get_data(as_text=True))
    body = {**fields, "email": "lea@example.lu", "consent": "y", "locale": "fr", "website": ""}
    r = client.post(f"/p/{program.slug}", data={**body, "issued": fields["issued"][:-2] + "xx"})
    assert r.status_code == 400 and "could not be checked" in r.get_data(as_text=True)
    other = factories.program(vendor, name="Other")
    r = client.post(f"/p/{other.slug}", data=body)  # a stamp issued for another program
    assert r.status_code == 400 and "could not be checked" in r.get_data(as_text=True)
    # Last (the session cookie re-signed "tomorrow" would look forged today).
    with time_machine.travel(start + dt.timedelta(days=1, minutes=1), tick=False):
        r = client.post(f"/p/{program.slug}", data=body)
        assert r.status_code == 400 and "open for too long" in r.get_data(as_text=True)
    assert _cards() == []


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "ENROLL_RATE_LIMIT": "2 per hour"}],
                         indirect=True)
def test_enrolment_is_rate_limited_per_ip(client, program):
    assert enrol(client, program.slug, email="a@example.lu").status_code == 303
    assert enrol(client, program.slug, email="b@example.lu").status_code == 303
    r = enrol(client, program.slug, email="c@example.lu")
    assert r.status_code == 429
    assert len(_cards()) == 2


def test_unknown_program_is_404_and_paused_program_takes_no_cards(client, program):
    assert client.get("/p/no-such-program").status_code == 404
    program.active = False
    db.session.commit()
    html = client.get(f"/p/{program.slug}?lang=en").get_data(as_text=True)
    assert "paused" in html and 'name="email"' not in html


def test_points_program_poster_lists_the_catalog(client, factories):
    vendor = factories.vendor("Bäckerei")
    points = factories.program(vendor, type="points", name="Punkte")
    html = client.get(f"/p/{points.slug}?lang=de").get_data(as_text=True)
    assert "Croissant" in html and "Cake" in html
    assert '<html lang="de">' in html

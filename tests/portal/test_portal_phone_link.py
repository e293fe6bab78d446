"""Recovery at the till: staff find the card and show a one-time QR code (a 10-minute sign-in link) that the
customer scans with their phone; the link row keeps who made it."""
from __future__ import annotations

import datetime as dt
import re
import types

import time_machine

from portal.extensions import db
from portal.models import SignInLink
from portal.services import sign_in
from support import csrf_from

TOKEN = "till-token-" + "x" * 32


def _known_token(monkeypatch):
    """The QR's token, made known to the test (the tablet shows it only as a QR code)."""
    monkeypatch.setattr(sign_in, "secrets", types.SimpleNamespace(token_urlsafe=lambda n: TOKEN))




def _ask(staff, card, **form):
    return staff.htmx("POST", f"/tablet/card/{card.card_number}", {"action": "phone-link", **form})


def test_staff_show_a_qr_that_opens_the_card_once(staff, staff_user, shop, app, monkeypatch):
    _known_token(monkeypatch)
    card = shop.stamp_card
    response = _ask(staff, card, staff_pin="4321")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert '<svg' in html and 'class="phone-qr"' in html and "works once" in html
    assert response.headers["Cache-Control"] == "no-store"
    assert TOKEN not in html  # only as a QR code
    db.session.rollback()
    (link,) = db.session.scalars(db.select(SignInLink)).all()
    assert link.via == "till" and link.card_id == card.id and link.user_id == staff_user.id
    assert link.staff_name == "Anna" and link.staff_pin_id == shop.pin.id
    assert link.expires_at - link.created_at == dt.timedelta(minutes=10)
    assert link.token_hash == sign_in.token_hash(TOKEN)

    phone = app.test_client()
    page = phone.get(f"/s/{TOKEN}")
    assert page.status_code == 200 and "Open my card" in page.get_data(as_text=True)
    opened = phone.post(f"/s/{TOKEN}", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert opened.status_code == 303 and opened.headers["Location"].endswith(f"/c/{card.public_token}")
    again = phone.post(f"/s/{TOKEN}", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert again.status_code == 410


def test_the_till_qr_expires_after_ten_minutes(staff, shop, app, monkeypatch):
    _known_token(monkeypatch)
    start = dt.datetime.now(dt.timezone.utc)
    with time_machine.travel(start, tick=False):
        assert _ask(staff, shop.stamp_card, staff_pin="4321").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=10, seconds=1), tick=False):
        assert app.test_client().get(f"/s/{TOKEN}").status_code == 410


def test_the_till_qr_needs_the_staff_pin_when_the_program_does(staff, shop):
    response = _ask(staff, shop.stamp_card, staff_pin="")
    assert response.status_code == 403 and "phone-qr" not in response.get_data(as_text=True)
    response = _ask(staff, shop.stamp_card, staff_pin="0000")
    assert response.status_code == 403 and "Wrong PIN" in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalars(db.select(SignInLink)).all() == []


def test_the_tablet_offers_the_button(staff, shop):
    html = staff.htmx("GET", f"/tablet/card/{shop.stamp_card.card_number}").get_data(as_text=True)
    assert 'value="phone-link"' in html and "Send the card to the customer" in html


def test_replacing_the_card_ends_its_unused_links(staff, owner, shop, app, monkeypatch):
    """A QR shown (or a link mailed) before a lost phone's card is replaced opens nothing afterwards."""
    _known_token(monkeypatch)
    card = shop.stamp_card
    assert _ask(staff, card, staff_pin="4321").status_code == 200
    assert app.test_client().get(f"/s/{TOKEN}").status_code == 200  # usable before
    r = owner.post(f"/customers/{card.card_number}/replace", {"reason": "Phone stolen"})
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    assert app.test_client().get(f"/s/{TOKEN}").status_code == 410

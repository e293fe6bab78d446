"""Issue 17, item 4: pending poster sign-ups. With the program's switch on, a card made from the poster collects
nothing until a staff member confirms it with their PIN on its first stamp or points; cards made at the till never
are pending."""
from __future__ import annotations

import random

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction

V = "/api/v1/vendor/loyalty"
P = "/api/v1/loyalty/programs"
_rng = random.SystemRandom()


def signup(client, program, **data):
    body = {"email": f"fan{_rng.randrange(10**12)}@example.com", "consent": True, **data}
    r = client.post(f"{P}/{program.slug}/enroll", json=body)
    assert r.status_code == 201, r.json
    return r.json


def holding(program):
    program.pending_signups = True
    program.require_pin = False
    program.cooldown_minutes = 0
    db.session.commit()
    return program


def card_row(number):
    db.session.rollback()
    return db.session.scalar(select(LoyaltyCard).where(LoyaltyCard.card_number == number))


def test_switch_is_off_by_default_and_owner_turns_it_on_by_api(shop, client):
    assert shop.stamps.pending_signups is False
    assert shop.api.get(f"{V}/programs/{shop.stamps.id}").json["pending_signups"] is False
    body = signup(client, shop.stamps)
    assert body["pending"] is False  # off: a poster card collects at once
    r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json={"pending_signups": True})
    assert r.status_code == 200 and r.json["pending_signups"] is True
    assert signup(client, shop.stamps)["pending"] is True


def test_pending_card_needs_a_pin_then_is_confirmed(shop, client):
    holding(shop.stamps)
    number = signup(client, shop.stamps)["card_number"]
    r = shop.api.post(f"{V}/cards/{number}/stamps", json={})
    assert r.status_code == 403 and r.json["error"]["code"] == "card_pending_confirmation"
    assert "PIN" in r.json["error"]["message"]
    r = shop.api.post(f"{V}/cards/{number}/stamps", json={"staff_pin": "4321"})
    assert r.status_code == 201, r.json
    assert r.json["card"]["pending"] is False and r.json["card"]["stamps"] == 1
    card = card_row(number)
    assert card.confirmed_at is not None and card.confirmed_by_pin_id == shop.pin.id
    assert card.confirmed_by_name == "Anna"
    # confirmed: the program's own rule (no PIN) applies from now on
    r = shop.api.post(f"{V}/cards/{number}/stamps", json={})
    assert r.status_code == 201 and r.json["card"]["stamps"] == 2


def test_a_wrong_pin_on_a_pending_card_counts_towards_the_lockout(shop, client):
    holding(shop.stamps)
    number = signup(client, shop.stamps)["card_number"]
    r = shop.api.post(f"{V}/cards/{number}/stamps", json={"staff_pin": "9999"})
    assert r.status_code == 403 and r.json["error"]["code"] == "pin_invalid"
    assert r.json["error"]["attempts_left"] == shop.stamps.pin_max_attempts - 1
    assert card_row(number).pending is True


def test_twenty_fake_signups_earn_nothing_without_a_pin(shop, client):
    holding(shop.stamps)
    numbers = [signup(client, shop.stamps)["card_number"] for _ in range(20)]
    for number in numbers:
        r = shop.api.post(f"{V}/cards/{number}/stamps", json={"count": 5})
        assert r.status_code == 403 and r.json["error"]["code"] == "card_pending_confirmation", r.json
    db.session.rollback()
    cards = list(db.session.scalars(select(LoyaltyCard).where(LoyaltyCard.card_number.in_(numbers))))
    assert len(cards) == 20 and all(c.pending and c.stamps == 0 for c in cards)
    assert db.session.scalar(select(func.count()).select_from(LoyaltyTransaction).where(
        LoyaltyTransaction.card_id.in_([c.id for c in cards]))) == 0


def test_points_cards_too(shop, client):
    holding(shop.points)
    number = signup(client, shop.points)["card_number"]
    r = shop.api.post(f"{V}/cards/{number}/points", json={"amount": "12.00"})
    assert r.status_code == 403 and r.json["error"]["code"] == "card_pending_confirmation"
    r = shop.api.post(f"{V}/cards/{number}/points", json={"amount": "12.00", "staff_pin": "4321"})
    assert r.status_code == 201 and r.json["card"]["points"] == 12 and r.json["card"]["pending"] is False


def test_cards_made_at_the_till_are_never_pending(shop):
    holding(shop.stamps)
    r = shop.api.post(f"{V}/cards", json={"program_id": shop.stamps.id, "name": "Walk-in"})
    assert r.status_code == 201 and r.json["pending"] is False
    assert shop.api.post(f"{V}/cards/{r.json['card_number']}/stamps", json={}).status_code == 201


def test_poster_form_card_is_pending_and_its_page_says_so(shop, client, app):
    holding(shop.stamps)
    app.config["ENROLL_MIN_FORM_SECONDS"] = 0
    from support import csrf_from  # noqa: F401
    import re

    page = client.get(f"/p/{shop.stamps.slug}?lang=en").get_data(as_text=True)
    fields = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', page).group(1) for name in ("csrf_token", "issued")}
    r = client.post(f"/p/{shop.stamps.slug}", data={**fields, "email": "poster@example.com", "consent": "y",
                                                    "locale": "en", "website": ""})
    assert r.status_code in (200, 302, 303), r.status_code
    db.session.rollback()
    card = db.session.scalar(select(LoyaltyCard).where(LoyaltyCard.customer_email == "poster@example.com"))
    assert card is not None and card.pending is True
    html = client.get(f"/c/{card.public_token}?lang=en").get_data(as_text=True)
    assert "Show this card at the till to activate it" in html
    html_fr = client.get(f"/c/{card.public_token}?lang=fr").get_data(as_text=True)
    assert "Show this card at the till to activate it" not in html_fr and 'data-code="card_pending_confirmation"' in html_fr
    shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
    html = client.get(f"/c/{card.public_token}?lang=en").get_data(as_text=True)
    assert "to activate" not in html

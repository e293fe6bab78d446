"""Issue 17 on the tablet: the Undo button under an action's result (htmx and plain form posts), its refusals in
plain words, pending poster sign-ups at the till, and the owner's switch in the program settings."""
import datetime as dt
import re

import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction

KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')
UNDO_RE = re.compile(r'action="/tablet/undo/(\d+)"')
UTC = dt.timezone.utc


def start():
    """A whole minute just ahead of the real clock (the session's CSRF token must not look issued in the future
    nor be older than its time limit), and how the page writes the end of its undo window."""
    from babel import dates
    from zoneinfo import ZoneInfo

    t0 = (dt.datetime.now(UTC) + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    end = t0 + dt.timedelta(minutes=2)
    return t0, dates.format_time(end, "short", tzinfo=ZoneInfo("Europe/Luxembourg"), locale="en"), end


def key_from(html):
    return KEY_RE.search(html).group(1)


def undo_keys(html):
    """(transaction id, the undo form's own key) from an action's result."""
    form = html[html.index('class="undo-form"') - 400:]
    return int(UNDO_RE.search(html).group(1)), key_from(form[form.index("undo-form"):])


def panel(browser, card):
    return browser.htmx("GET", f"/tablet/card/{card.card_number}").get_data(as_text=True)


def act(browser, card, action, key, **form):
    return browser.htmx("POST", f"/tablet/card/{card.card_number}", {"action": action, "idempotency_key": key, **form})


def undo(browser, card, tx_id, key, htmx=True, **form):
    data = {"idempotency_key": key, "card_number": card.card_number, **form}
    if htmx:
        return browser.htmx("POST", f"/tablet/undo/{tx_id}", data)
    return browser.post(f"/tablet/undo/{tx_id}", data)


def fresh(card):
    db.session.rollback()
    return db.session.get(LoyaltyCard, card.id)


def test_undo_button_after_a_stamp_and_undo_with_htmx(staff, shop):
    card = shop.stamp_card
    t0, until, end = start()
    with time_machine.travel(t0, tick=False) as traveller:
        html = act(staff, card, "stamp", key_from(panel(staff, card)), staff_pin="4321").get_data(as_text=True)
        assert "Stamp added: 1 of 10" in html
        assert 'class="undo-form"' in html and f"Possible until {until}" in html
        assert f'data-until="{end.isoformat()[:19]}' in html  # the countdown of the time left
        assert 'id="undo-pin"' in html  # the program asks for a PIN
        tx_id, key = undo_keys(html)
        traveller.shift(dt.timedelta(minutes=1, seconds=59))
        response = undo(staff, card, tx_id, key, staff_pin="4321")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "<html" not in html and "Undone. The balance is back to 0 stamps." in html
    assert 'class="undo-form"' not in html
    assert fresh(card).stamps == 0
    void = db.session.scalar(select(LoyaltyTransaction).where(LoyaltyTransaction.voided_transaction_id == tx_id))
    assert void.type == "void" and void.note == "undone_by_staff" and void.staff_name == "Anna"


def test_undo_works_without_javascript(staff, shop):
    card = shop.stamp_card
    page = staff.get(f"/tablet?card={card.card_number}").get_data(as_text=True)
    response = staff.post(f"/tablet/card/{card.card_number}",
                          {"action": "stamp", "idempotency_key": key_from(page), "staff_pin": "4321"})
    html = response.get_data(as_text=True)
    assert "<html" in html and 'class="undo-form"' in html
    tx_id, key = undo_keys(html)
    response = undo(staff, card, tx_id, key, htmx=False, staff_pin="4321")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html and "Undone." in html
    assert fresh(card).stamps == 0
    # the same form sent again (a double tap, a reload) is replayed, not run twice
    again = undo(staff, card, tx_id, key, htmx=False, staff_pin="4321")
    assert again.status_code == 200 and "Undone." in again.get_data(as_text=True)
    assert db.session.scalar(select(LoyaltyTransaction.id).where(LoyaltyTransaction.voided_transaction_id == tx_id))


def test_too_late_is_refused_in_plain_words(staff, shop):
    card = shop.stamp_card
    t0, until, _ = start()
    with time_machine.travel(t0, tick=False) as traveller:
        html = act(staff, card, "stamp", key_from(panel(staff, card)), staff_pin="4321").get_data(as_text=True)
        tx_id, key = undo_keys(html)
        traveller.shift(dt.timedelta(minutes=2, seconds=1))
        response = undo(staff, card, tx_id, key, staff_pin="4321")
        html = response.get_data(as_text=True)
        assert response.status_code == 409
        assert 'data-code="undo_window_passed"' in html and f"until {until}" in html
        # the card panel, shown again, no longer offers the undo
        assert 'class="undo-form"' not in panel(staff, card)
    assert fresh(card).stamps == 1


def test_another_staff_members_pin_is_refused(staff, shop, factories):
    factories.pin(shop.stamps, "5555", "Ben")
    card = shop.stamp_card
    html = act(staff, card, "stamp", key_from(panel(staff, card)), staff_pin="4321").get_data(as_text=True)
    tx_id, key = undo_keys(html)
    response = undo(staff, card, tx_id, key, staff_pin="5555")
    assert response.status_code == 403 and 'data-code="undo_not_yours"' in response.get_data(as_text=True)
    assert fresh(card).stamps == 1


def test_undo_in_french(staff, shop):
    card = shop.stamp_card
    html = act(staff, card, "stamp", key_from(panel(staff, card)), staff_pin="4321").get_data(as_text=True)
    tx_id, key = undo_keys(html)
    response = staff.htmx("POST", f"/tablet/undo/{tx_id}?lang=fr",
                          {"idempotency_key": key, "card_number": card.card_number, "staff_pin": "4321"},
                          headers={"Accept-Language": "fr"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Undone." not in html and "Annulé" in html, html


def test_owner_sees_undone_by_staff_on_the_card(owner, staff, shop):
    card = shop.stamp_card
    html = act(staff, card, "stamp", key_from(panel(staff, card)), staff_pin="4321").get_data(as_text=True)
    tx_id, key = undo_keys(html)
    undo(staff, card, tx_id, key, staff_pin="4321")
    html = owner.get(f"/customers/{card.card_number}").get_data(as_text=True)
    assert "Undone by staff" in html


def test_pending_card_on_the_tablet(staff, shop, client):
    shop.stamps.require_pin = False
    shop.stamps.pending_signups = True
    db.session.commit()
    r = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll",
                    json={"email": "till-check@example.com", "consent": True})
    card = db.session.get(LoyaltyCard, db.session.scalar(select(LoyaltyCard.id).where(
        LoyaltyCard.card_number == r.json["card_number"])))
    html = panel(staff, card)
    assert 'data-code="card_pending_confirmation"' in html and 'id="staff-pin"' in html  # PIN asked for this card
    response = act(staff, card, "stamp", key_from(html))
    html = response.get_data(as_text=True)
    assert response.status_code == 403 and "not confirmed yet" in html
    response = act(staff, card, "stamp", key_from(html), staff_pin="4321")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Stamp added: 1 of 10" in html
    assert 'id="staff-pin"' not in html  # confirmed: the program's own rule (no PIN) applies again
    assert 'id="undo-pin"' in html  # but the undo asks for the PIN the stamp was given with
    card = fresh(card)
    assert card.pending is False and card.confirmed_by_name == "Anna"


def test_owner_sees_who_confirmed_a_poster_card(owner, shop, client):
    shop.stamps.pending_signups = True
    db.session.commit()
    r = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll",
                    json={"email": "owner-view@example.com", "consent": True})
    number = r.json["card_number"]
    html = owner.get(f"/customers/{number}").get_data(as_text=True)
    assert "Pending" in html and "not seen at the till yet" in html
    shop.api.post(f"/api/v1/vendor/loyalty/cards/{number}/stamps", json={"staff_pin": "4321"})
    html = owner.get(f"/customers/{number}").get_data(as_text=True)
    assert "confirmed at the till on" in html and "by Anna" in html


def test_owner_switches_pending_signups_in_program_settings(owner, shop):
    form = owner.get(f"/programs/{shop.stamps.id}/edit").get_data(as_text=True)
    assert 'name="pending_signups"' in form and "Poster sign-ups start pending" in form
    data = {"name": shop.stamps.name, "stamps_required": "10", "reward_text": "A free coffee",
            "require_pin": "on", "pending_signups": "on", "cooldown_minutes": "15", "daily_stamp_limit": "5",
            "pin_max_attempts": "5", "pin_lockout_minutes": "15"}
    assert owner.post(f"/programs/{shop.stamps.id}/edit", data).status_code == 303
    db.session.rollback()
    assert db.session.get(type(shop.stamps), shop.stamps.id).pending_signups is True
    data.pop("pending_signups")
    owner.post(f"/programs/{shop.stamps.id}/edit", data)
    db.session.rollback()
    assert db.session.get(type(shop.stamps), shop.stamps.id).pending_signups is False

"""The staff tablet: find, stamp, redeem, points; refusals in plain words; replay protection; the transaction rule."""
import re

import time_machine

from portal.extensions import db
from portal.models import IdempotencyRecord, LoyaltyCard, LoyaltyReward, LoyaltyTransaction, PinLockout, Refusal
from portal.services import clock
from support import field_value



def key_from(html):
    return field_value(html, "idempotency_key")


def panel(browser, card):
    response = browser.htmx("GET", f"/tablet/card/{card.card_number}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def act(browser, card, action, key, **form):
    return browser.htmx("POST", f"/tablet/card/{card.card_number}",
                        {"action": action, "idempotency_key": key, **form})


def fresh(card):
    db.session.rollback()
    return db.session.get(LoyaltyCard, card.id)


def test_staff_finds_card_by_number_and_by_name(staff, shop):
    number = shop.stamp_card.card_number
    response = staff.htmx("GET", f"/tablet/search?q={number[:3]}%20{number[3:6]}%20{number[6:]}")
    html = response.get_data(as_text=True)
    assert 'class="panel"' in html and "Add stamp" in html
    assert "<html" not in html
    response = staff.htmx("GET", "/tablet/search?q=" + shop.stamp_card.customer_name.split()[0])
    html = response.get_data(as_text=True)
    assert number in html and 'class="results"' in html
    # A typo in the check digit is caught before the database is asked.
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    response = staff.htmx("GET", f"/tablet/search?q={typo}")
    assert "typo" in response.get_data(as_text=True)


def test_stamp_then_cooldown_refusal_in_plain_words(staff, shop):
    card = shop.stamp_card
    key = key_from(panel(staff, card))
    response = act(staff, card, "stamp", key, staff_pin="4321")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert "Stamp added: 1 of 10" in html
    assert len(html.encode()) < 4096, len(html.encode())
    second = act(staff, card, "stamp", key_from(html), staff_pin="4321")
    html = second.get_data(as_text=True)
    assert second.status_code == 429
    assert 'data-code="cooldown_active"' in html
    assert "Next stamp possible at" in html and "data-until=" in html
    assert fresh(card).stamps == 1
    # The refusal is logged (kept although the request "failed").
    assert db.session.query(Refusal).filter_by(card_id=card.id, code="cooldown_active").count() == 1


def test_double_tap_with_the_same_key_stamps_once(staff, shop):
    card = shop.stamp_card
    key = key_from(panel(staff, card))
    first = act(staff, card, "stamp", key, staff_pin="4321")
    again = act(staff, card, "stamp", key, staff_pin="4321")
    assert first.status_code == again.status_code == 200
    assert "Stamp added: 1 of 10" in again.get_data(as_text=True)  # the replayed outcome, not a cooldown
    assert fresh(card).stamps == 1
    assert db.session.query(LoyaltyTransaction).filter_by(card_id=card.id).count() == 1
    assert db.session.query(IdempotencyRecord).filter_by(key=key).one().status_code == 200


def test_same_key_with_another_action_is_refused(staff, shop):
    card = shop.stamp_card
    key = key_from(panel(staff, card))
    act(staff, card, "stamp", key, staff_pin="4321")
    other = act(staff, card, "redeem", key, staff_pin="4321")
    assert other.status_code == 422
    assert "idempotency_key_reused" in other.get_data(as_text=True)


def test_wrong_pin_counts_persist_and_lock(staff, shop, staff_user):
    card = shop.stamp_card
    shop.stamps.pin_max_attempts = 2
    db.session.commit()
    html = panel(staff, card)
    first = act(staff, card, "stamp", key_from(html), staff_pin="0000")
    text = first.get_data(as_text=True)
    assert first.status_code == 403 and 'data-code="pin_invalid"' in text and "1 attempt(s) left" in text
    lock = db.session.query(PinLockout).filter_by(program_id=shop.stamps.id, client_key=f"user:{staff_user.id}").one()
    assert lock.failed_attempts == 1  # committed although the action was refused
    second = act(staff, card, "stamp", key_from(text), staff_pin="0000")
    assert "locked until" in second.get_data(as_text=True)
    third = act(staff, card, "stamp", key_from(second.get_data(as_text=True)), staff_pin="4321")
    assert third.status_code == 423 and 'data-code="pin_locked"' in third.get_data(as_text=True)
    assert fresh(card).stamps == 0


def test_a_right_pin_in_cooldown_does_not_reset_the_wrong_pin_count(staff, shop):
    """The tablet shares the rule: a right PIN whose stamp is refused (cooldown) forgives no wrong PIN."""
    card = shop.stamp_card
    shop.stamps.pin_max_attempts = 3
    shop.stamps.cooldown_minutes = 15
    db.session.commit()
    html = act(staff, card, "stamp", key_from(panel(staff, card)), staff_pin="4321").get_data(as_text=True)
    assert "Stamp added" in html
    for attempt in (1, 2):
        wrong = act(staff, card, "stamp", key_from(html), staff_pin=f"000{attempt}")
        html = wrong.get_data(as_text=True)
        assert wrong.status_code == 403 and 'data-code="pin_invalid"' in html
        right = act(staff, card, "stamp", key_from(html), staff_pin="4321")
        html = right.get_data(as_text=True)
        assert right.status_code == 429 and 'data-code="cooldown_active"' in html
    last = act(staff, card, "stamp", key_from(html), staff_pin="0003")
    html = last.get_data(as_text=True)
    assert last.status_code == 403 and "locked until" in html
    locked = act(staff, card, "stamp", key_from(html), staff_pin="4321")
    assert locked.status_code == 423 and 'data-code="pin_locked"' in locked.get_data(as_text=True)
    assert fresh(card).stamps == 1


def test_non_kept_refusal_rolls_back_the_claim(staff, shop):
    card = shop.stamp_card
    key = key_from(panel(staff, card))
    response = act(staff, card, "redeem", key, staff_pin="4321")
    assert response.status_code == 409 and "Not enough stamps yet: 0 of 10" in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.query(IdempotencyRecord).filter_by(key=key).count() == 0  # free to try again


def test_redeem_when_full(staff, shop, factories):
    program = factories.program(shop.vendor, stamps_required=2, cooldown_minutes=0, name="Quick")
    card = factories.card(program)
    html = panel(staff, card)
    for _ in range(2):
        html = act(staff, card, "stamp", key_from(html)).get_data(as_text=True)
    assert "The reward is ready" in html
    html = act(staff, card, "redeem", key_from(html)).get_data(as_text=True)
    assert "Reward redeemed: A free coffee" in html
    assert fresh(card).stamps == 0 and fresh(card).rewards_redeemed == 1


def test_countdown_before_tapping(staff, shop):
    card = shop.stamp_card
    act(staff, card, "stamp", key_from(panel(staff, card)), staff_pin="4321")
    html = panel(staff, card)
    assert 'class="wait" data-code="cooldown_active"' in html
    with time_machine.travel(clock.now() + __import__("datetime").timedelta(minutes=16), tick=False):
        assert 'class="wait"' not in panel(staff, card)


def test_points_earn_and_reward(staff, shop):
    card = shop.points_card
    html = panel(staff, card)
    html = act(staff, card, "points", key_from(html), staff_pin="4321", amount="25.50").get_data(as_text=True)
    assert "25 points added" in html
    croissant = db.session.query(LoyaltyReward).filter_by(program_id=shop.points.id, name="Croissant").one()
    response = act(staff, card, f"reward-{croissant.id}", key_from(html), staff_pin="4321")
    assert "Reward redeemed: Croissant. Balance: 5." in response.get_data(as_text=True)


def test_refusal_in_the_vendors_language(staff, shop):
    shop.vendor.locale = "fr"
    db.session.commit()
    card = shop.stamp_card
    html = panel(staff, card)
    assert 'lang="fr"' in staff.get("/tablet").get_data(as_text=True)
    response = act(staff, card, "stamp", key_from(html), staff_pin="9999")
    assert response.status_code == 403


def test_full_page_without_javascript(staff, shop):
    card = shop.stamp_card
    page = staff.get(f"/tablet?card={card.card_number}").get_data(as_text=True)
    response = staff.post(f"/tablet/card/{card.card_number}", {"action": "stamp", "idempotency_key": key_from(page),
                                                                 "staff_pin": "4321"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html and "Stamp added" in html


def test_tablet_page_weight(staff, shop, app):
    page = staff.get(f"/tablet?card={shop.stamp_card.card_number}")
    total = len(page.get_data())
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.get_data(as_text=True)):
        response = staff.client.get(asset)
        total += len(response.get_data())
        response.close()
    assert total < 150_000, total

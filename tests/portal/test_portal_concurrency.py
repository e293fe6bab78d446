"""A retried or doubled tablet request, arriving at the same time on the real (threaded) server, stamps once."""
import threading

import requests

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction
from support import csrf_from, field_value


def test_simultaneous_submissions_with_one_key_stamp_once(live_server, shop, factories):
    staff = factories.user(shop.vendor, role="staff")
    session = requests.Session()
    login_page = session.get(live_server.url + "/login")
    session.post(live_server.url + "/login", data={"email": staff.email, "password": staff.plain_password,
                                                   "csrf_token": csrf_from(login_page.text)})
    card = shop.stamp_card
    page = session.get(f"{live_server.url}/tablet?card={card.card_number}").text
    form = {"csrf_token": csrf_from(page), "action": "stamp", "staff_pin": "4321",
            "idempotency_key": field_value(page, "idempotency_key")}
    barrier = threading.Barrier(6)
    results = []

    def tap():
        barrier.wait()
        response = session.post(f"{live_server.url}/tablet/card/{card.card_number}", data=form,
                                headers={"HX-Request": "true"}, timeout=60)
        results.append((response.status_code, "Stamp added: 1 of 10" in response.text))

    threads = [threading.Thread(target=tap) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(200, True)] * 6, results
    db.session.rollback()
    assert db.session.get(LoyaltyCard, card.id).stamps == 1
    assert db.session.query(LoyaltyTransaction).filter_by(card_id=card.id).count() == 1

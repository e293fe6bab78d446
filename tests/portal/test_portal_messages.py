"""The owner's message pages: compose, preview (htmx fragment from the same template), send, progress; nudges;
refusals shown next to the fields; staff cannot reach them."""
from __future__ import annotations

import re

from portal.extensions import db
from portal.models import PassMessage, PassMessageDelivery


def test_compose_preview_send_and_progress(owner, shop, factories):
    factories.card(shop.stamps)
    page = owner.get("/messages/new")
    assert page.status_code == 200 and "Before you send" in page.get_data(as_text=True)
    form = {"program_id": str(shop.stamps.id), "segment": "all", "text_en": "Closed on Monday",
            "text_fr": "Fermé lundi", "action": "preview"}
    fragment = owner.htmx("POST", "/messages/new", form)
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and html.lstrip().startswith('<section id="preview"')
    assert re.search(r'data-count="none">2<', html)  # no wallet configured: nobody has a pass
    assert db.session.scalar(db.select(db.func.count()).select_from(PassMessage)) == 0  # a preview writes nothing
    sent = owner.post("/messages/new", {**form, "action": "send"})
    assert sent.status_code == 303
    message_url = sent.headers["Location"]
    db.session.rollback()
    message = db.session.scalar(db.select(PassMessage))
    assert message.texts == {"en": "Closed on Monday", "fr": "Fermé lundi"} and message.recipients == 2
    detail = owner.get(message_url).get_data(as_text=True)
    assert 'data-progress="0/2"' in detail and 'hx-trigger="every 2s"' in detail
    db.session.execute(db.update(PassMessageDelivery).values(status="sent"))
    db.session.commit()
    poll = owner.htmx("GET", message_url)
    body = poll.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="progress"') and 'data-progress="2/2"' in body
    assert "every 2s" not in body  # done: the polling stops
    assert "Closed on Monday" in owner.get("/messages").get_data(as_text=True)


def test_refusals_are_shown_next_to_the_fields(owner, shop):
    r = owner.post("/messages/new", {"program_id": str(shop.stamps.id), "segment": "inactive", "days": "0",
                                     "text_en": "", "action": "send"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Write the message in at least one language." in html and "Must be between 1 and 365." in html
    r = owner.htmx("POST", "/messages/new", {"program_id": str(shop.stamps.id), "segment": "card",
                                            "card_number": "1234567890", "text_en": "x", "action": "preview"})
    assert r.status_code == 422 and "preview" in r.get_data(as_text=True)


def test_one_customer_from_the_card_page(owner, shop):
    card = shop.stamp_card
    page = owner.get(f"/customers/{card.card_number}").get_data(as_text=True)
    assert f"segment=card&amp;card_number={card.card_number}" in page
    compose = owner.get(f"/messages/new?program_id={shop.stamps.id}&segment=card&card_number={card.card_number}")
    assert f'value="{card.card_number}"' in compose.get_data(as_text=True)
    r = owner.post("/messages/new", {"program_id": str(shop.stamps.id), "segment": "card",
                                     "card_number": card.card_number, "text_de": "Hallo", "action": "send"})
    assert r.status_code == 303
    db.session.rollback()
    assert db.session.scalar(db.select(PassMessage.recipients)) == 1


def test_nudges_page(owner, shop):
    url = f"/programs/{shop.stamps.id}/nudges"
    assert "One stamp to go" in owner.get(url).get_data(as_text=True)
    bad = owner.post(url, {"one_to_go_on": "on", "one_to_go_daily_cap": "9"})
    assert bad.status_code == 422
    assert "Must be between 1 and 5." in bad.get_data(as_text=True)
    ok = owner.post(url, {"one_to_go_on": "on", "one_to_go_daily_cap": "2", "one_to_go_text_en": "One more!"})
    assert ok.status_code == 303
    db.session.rollback()
    db.session.refresh(shop.stamps)
    assert shop.stamps.nudges["one_to_go"]["on"] is True and shop.stamps.nudges["one_to_go"]["daily_cap"] == 2
    assert "One more!" in owner.get(url).get_data(as_text=True)
    # The points program has no "one stamp to go".
    assert "One stamp to go" not in owner.get(f"/programs/{shop.points.id}/nudges").get_data(as_text=True)


def test_staff_and_other_shops_cannot_reach_them(staff, owner, shop, factories):
    assert staff.get("/messages/new").status_code == 403
    other = factories.program(factories.vendor())
    assert owner.get(f"/programs/{other.id}/nudges").status_code == 404
    assert owner.get("/messages/999999").status_code == 404

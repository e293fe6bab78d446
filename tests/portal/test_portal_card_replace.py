"""The owner's card page: replace a card and merge duplicates, each behind a confirmation step; removing a staff
PIN and suspending a shop ask for confirmation too (issue 14, points 4, 6 and 7)."""

from portal.extensions import db
from portal.models import LoyaltyCard, RetiredCard, StaffPin
from portal.services import ledger, operations
from support import field_value



def fresh(card_id):
    db.session.rollback()
    return db.session.get(LoyaltyCard, card_id)


def test_owner_replaces_a_card_after_confirming(owner, shop, factories, staff):
    card = shop.stamp_card
    old = card.card_number
    operations.adjust(factories.owner_actor(shop.vendor), old, {"delta": 4, "reason": "Paper card"})
    db.session.commit()
    page = owner.get(f"/customers/{old}").get_data(as_text=True)
    assert f'href="/customers/{old}/replace"' in page and f'href="/customers/{old}/merge"' in page
    confirm = owner.get(f"/customers/{old}/replace")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Yes, replace this card" in html
    assert fresh(card.id).card_number == old  # asking changes nothing
    # Staff never get here (owner pages), and the service refuses them too.
    assert staff.get(f"/customers/{old}/replace").status_code == 403
    key = field_value(html, "idempotency_key")
    r = owner.post(f"/customers/{old}/replace", {"reason": "Phone stolen", "idempotency_key": key})
    assert r.status_code == 303
    replaced = fresh(card.id)
    assert replaced.card_number != old and replaced.stamps == 4
    assert r.headers["Location"].endswith(f"/customers/{replaced.card_number}")
    page = owner.get(r.headers["Location"]).get_data(as_text=True)
    assert "was replaced" in page and "Earlier numbers" in page and "Phone stolen" in page
    assert shop.vendor.owner.display_name in page  # who replaced it
    # A double submit replays the outcome instead of replacing twice.
    again = owner.post(f"/customers/{old}/replace", {"reason": "Phone stolen", "idempotency_key": key})
    assert again.status_code == 303 and again.headers["Location"] == r.headers["Location"]
    assert db.session.scalar(db.select(db.func.count()).select_from(RetiredCard)) == 1
    # The old number's page says why it is gone.
    gone = owner.get(f"/customers/{old}")
    assert gone.status_code == 410 and "was replaced" in gone.get_data(as_text=True)
    assert ledger.verify().ok


def test_owner_merges_duplicates_after_confirming(owner, shop, factories):
    actor = factories.owner_actor(shop.vendor)
    first = shop.stamp_card
    twin = factories.card(shop.stamps, name=first.customer_name, email=None, phone="+352 621 000 222")
    operations.adjust(actor, first.card_number, {"delta": 3, "reason": "Paper card"})
    operations.adjust(actor, twin.card_number, {"delta": 2, "reason": "Paper card"})
    db.session.commit()
    twin_number = twin.card_number
    choose = owner.get(f"/customers/{twin.card_number}/merge").get_data(as_text=True)
    assert "Possible duplicates" in choose and f"into={first.card_number}" in choose
    wrong = owner.get(f"/customers/{twin.card_number}/merge?into={shop.points_card.card_number}")
    assert wrong.status_code == 422 and "same program" in wrong.get_data(as_text=True)
    confirm = owner.get(f"/customers/{twin.card_number}/merge?into={first.card_number}")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Are you sure?" in html and "Yes, merge the cards" in html
    assert fresh(twin.id).stamps == 2  # asking changes nothing
    key = field_value(html, "idempotency_key")
    r = owner.post(f"/customers/{twin.card_number}/merge", {"into": first.card_number, "idempotency_key": key})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/customers/{first.card_number}")
    assert fresh(first.id).stamps == 5 and fresh(twin.id).stamps == 0
    page = owner.get(r.headers["Location"]).get_data(as_text=True)
    assert "was merged into this card" in page and "merged into this card on" in page
    assert owner.get(f"/customers/{twin_number}").status_code == 410
    assert ledger.verify().ok


def test_removing_a_pin_asks_first(owner, shop):
    page = owner.get("/staff").get_data(as_text=True)
    assert f'href="/staff/pins/{shop.pin.id}/delete"' in page
    assert f'action="/staff/pins/{shop.pin.id}/delete"' not in page  # no one-click removal
    confirm = owner.get(f"/staff/pins/{shop.pin.id}/delete")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Yes, remove the PIN" in html and "Anna" in html
    db.session.rollback()
    assert db.session.get(StaffPin, shop.pin.id).active is True
    assert owner.post(f"/staff/pins/{shop.pin.id}/delete").status_code == 303
    db.session.rollback()
    assert db.session.get(StaffPin, shop.pin.id).active is False


def test_suspending_a_shop_asks_first(admin, shop):
    page = admin.get("/admin/").get_data(as_text=True)
    assert f'href="/admin/vendors/{shop.vendor.id}/active"' in page
    confirm = admin.get(f"/admin/vendors/{shop.vendor.id}/active")
    assert confirm.status_code == 200 and "Yes, suspend" in confirm.get_data(as_text=True)
    db.session.refresh(shop.vendor)
    assert shop.vendor.active is True
    assert admin.post(f"/admin/vendors/{shop.vendor.id}/active", {"active": "0"}).status_code == 303
    db.session.refresh(shop.vendor)
    assert shop.vendor.active is False
    # Reactivating needs no confirmation: the page has the button itself.
    assert f'action="/admin/vendors/{shop.vendor.id}/active"' in admin.get("/admin/").get_data(as_text=True)

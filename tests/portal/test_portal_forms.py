"""Every HTML form is parsed by its Flask-WTF form (portal/forms.py): what the form refuses comes back as 422
with the message in the field's error slot, and nothing is written; the services still take plain dicts."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction, StaffPin, User, Vendor
from support import field_value


def _count(model, *where):
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_admin_new_vendor_form(admin):
    before = _count(Vendor)
    response = admin.post("/admin/vendors", {"name": "", "owner_email": "x@shop.test",
                                            "owner_password": "long-enough-password"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="name-error">This field is required.' in html
    assert 'value="x@shop.test"' in html and "long-enough-password" not in html  # a password is never echoed
    assert _count(Vendor) == before


def test_staff_pin_and_tablet_account_forms(owner, shop):
    before = _count(StaffPin)
    response = owner.post("/staff/pins", {"program_id": str(shop.stamps.id), "staff_name": "x" * 121})
    assert response.status_code == 422
    assert 'id="staff_name-error">At most 120 characters.' in response.get_data(as_text=True)
    assert _count(StaffPin) == before
    users = _count(User)
    response = owner.post("/staff/users", {"name": "Tom", "email": "", "password": "a-long-password"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="email-error">This field is required.' in html
    assert _count(User) == users


def test_correction_and_void_forms(owner, shop):
    number = shop.stamp_card.card_number
    page = owner.get(f"/customers/{number}").get_data(as_text=True)
    response = owner.post(f"/customers/{number}/adjust", {"delta": "2", "reason": "",
                                                         "idempotency_key": field_value(page, "idempotency_key")})
    assert response.status_code == 422
    assert 'id="reason-error">This field is required.' in response.get_data(as_text=True)
    assert _count(LoyaltyTransaction) == 0
    assert owner.post(f"/customers/{number}/adjust", {"delta": "2", "reason": "Paper card"}).status_code == 303
    tx_id = db.session.scalar(select(LoyaltyTransaction.id))
    response = owner.post(f"/transactions/{tx_id}/void", {"reason": ""})
    assert response.status_code == 422
    assert f'id="void-reason-{tx_id}"' in response.get_data(as_text=True)
    assert "This field is required." in response.get_data(as_text=True)
    assert _count(LoyaltyTransaction) == 1


def test_replace_and_merge_forms(owner, shop, factories):
    number = shop.stamp_card.card_number
    response = owner.post(f"/customers/{number}/replace", {"reason": "x" * 501})
    assert response.status_code == 422
    assert 'id="reason-error">At most 500 characters.' in response.get_data(as_text=True)
    assert _count(LoyaltyCard, LoyaltyCard.card_number == number) == 1
    response = owner.get(f"/customers/{number}/merge?into={'9' * 41}")
    assert response.status_code == 422
    assert 'id="into-error">At most 40 characters.' in response.get_data(as_text=True)


def test_tablet_action_form(staff, shop):
    number = shop.stamp_card.card_number
    page = staff.get(f"/tablet/card/{number}").get_data(as_text=True)
    response = staff.post(f"/tablet/card/{number}", {"action": "stamp", "staff_pin": "1" * 21,
                                                    "idempotency_key": field_value(page, "idempotency_key")})
    assert response.status_code == 422 and "At most 20 characters." in response.get_data(as_text=True)
    assert _count(LoyaltyTransaction) == 0


def test_import_form(owner, shop):
    response = owner.post("/customers/import", {"program_id": "", "text": "name,email\nAnna,anna@example.com\n",
                                                "confirm": "1"})
    assert response.status_code == 422
    assert 'id="program_id-error">This field is required.' in response.get_data(as_text=True)
    assert _count(LoyaltyCard, LoyaltyCard.customer_email == "anna@example.com") == 0


def test_program_form(owner, shop):
    response = owner.post(f"/programs/{shop.stamps.id}/edit", {"name": "x" * 121, "stamps_required": "10",
                                                              "reward_text": "A coffee"})
    assert response.status_code == 422
    assert 'id="name-error">At most 120 characters.' in response.get_data(as_text=True)
    db.session.rollback()
    db.session.refresh(shop.stamps)
    assert shop.stamps.name == "Coffee card"
    inline = owner.post(f"/programs/{shop.stamps.id}/validate", {"name": "x" * 121},
                        headers={"HX-Request": "true"})
    assert 'id="name-error" hx-swap-oob="true">At most 120 characters.' in inline.get_data(as_text=True)

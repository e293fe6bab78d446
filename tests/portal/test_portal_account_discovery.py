"""An owner creating a staff login cannot tell from the answer whether the address is another shop's login, and
no second account is made (docs/security.md, "Account discovery")."""
import re

import bcrypt
import pytest

from portal.extensions import db
from portal.models import User
from portal.services import security


def _answer(owner, email):
    """Everything the owner gets back: the POST's status, headers that matter and body, then the flashed message."""
    response = owner.post("/staff/users", {"email": email, "name": "Till", "password": "till-password-1"})
    page = owner.get("/staff").get_data(as_text=True)
    flashes = re.findall(r'<p class="flash flash-(\w+)">(.*?)</p>', page, re.S)
    body = response.get_data(as_text=True).replace(email, "<email>")
    return (response.status_code, response.headers.get("Location"), body,
            [(kind, text.replace(email, "<email>")) for kind, text in flashes])


@pytest.fixture
def elsewhere(factories):
    """Another shop with an owner and a staff login."""
    vendor = factories.vendor("Another shop")
    staff = factories.user(vendor, role="staff", email="taken-elsewhere@shop.test")
    return vendor, staff


def test_free_and_taken_by_another_shop_get_the_same_answer(owner, shop, elsewhere, factories):
    other_vendor, other_staff = elsewhere
    admin = factories.user(None, role="admin", email="operator@platform.test")
    free = _answer(owner, "brand-new@shop.test")
    for email in (other_staff.email, other_vendor.owner.email, admin.email):
        assert _answer(owner, email) == free, email
    assert free[0] == 303 and free[3] and free[3][0][0] == "success"
    db.session.rollback()
    # the free address got its login; the taken ones kept theirs, untouched, and got no second one
    assert db.session.query(User).filter_by(email="brand-new@shop.test").one().vendor_id == shop.vendor.id
    for email, vendor_id in ((other_staff.email, other_vendor.id), (other_vendor.owner.email, other_vendor.id),
                             (admin.email, None)):
        rows = db.session.query(User).filter_by(email=email).all()
        assert len(rows) == 1 and rows[0].vendor_id == vendor_id


def test_taken_address_keeps_its_password(owner, elsewhere, login, app):
    _vendor, other_staff = elsewhere
    owner.post("/staff/users", {"email": other_staff.email, "name": "Mallory", "password": "mallory-password-1"})
    assert login(other_staff.email, "mallory-password-1", target=app.test_client()).status_code == 401
    assert login(other_staff.email, other_staff.plain_password, target=app.test_client()).status_code == 302


def test_the_same_bcrypt_work_either_way(owner, elsewhere, monkeypatch):
    calls = []
    real = bcrypt.hashpw
    monkeypatch.setattr(security.bcrypt, "hashpw", lambda *a: calls.append(1) or real(*a))
    owner.post("/staff/users", {"email": "brand-new@shop.test", "name": "Till", "password": "till-password-1"})
    created = len(calls)
    calls.clear()
    owner.post("/staff/users", {"email": elsewhere[1].email, "name": "Till", "password": "till-password-1"})
    assert created == len(calls) == 1


def test_invalid_input_is_refused_the_same_way_for_taken_addresses(owner, elsewhere):
    """Field checks run before the address is looked at: a weak password gets its error whoever holds the email."""
    for email in ("brand-new@shop.test", elsewhere[1].email):
        response = owner.post("/staff/users", {"email": email, "name": "Till", "password": "short"})
        assert response.status_code == 422 and "At least 10 characters." in response.get_data(as_text=True)


def test_an_address_of_this_shop_is_refused_clearly(owner, shop, staff_user):
    for email in (staff_user.email, shop.vendor.owner.email):
        response = owner.post("/staff/users", {"email": email, "name": "Till", "password": "till-password-1"})
        assert response.status_code == 422
        assert "This email already has an account." in response.get_data(as_text=True)

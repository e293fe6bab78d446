"""Passwords of any length the forms accept: no 500, the same answer and the same work for known and unknown
emails, and hashes made before (plain bcrypt) still verify."""
import bcrypt
import pytest

from portal.extensions import db
from portal.services import security

LONG = "é" * 40 + "x" * 20  # 60 characters, 100 bytes in UTF-8: over bcrypt's 72-byte limit


@pytest.fixture
def bcrypt_calls(monkeypatch):
    """The number of bcrypt checks the app made since the last reset (calls, not time)."""
    calls = []
    real = bcrypt.checkpw

    def counting(password, hashed):
        calls.append(len(password))
        return real(password, hashed)

    monkeypatch.setattr(security.bcrypt, "checkpw", counting)
    return calls


def test_long_password_login_same_answer_and_work_for_known_and_unknown(app, login, shop, bcrypt_calls,
                                                                         server_errors):
    known = login(shop.vendor.owner.email, LONG, target=app.test_client())
    known_calls = len(bcrypt_calls)
    bcrypt_calls.clear()
    unknown = login("nobody-here@example.com", LONG, target=app.test_client())
    unknown_calls = len(bcrypt_calls)
    assert known.status_code == unknown.status_code == 401, server_errors()
    assert "Wrong email or password." in known.get_data(as_text=True)
    assert "Wrong email or password." in unknown.get_data(as_text=True)
    assert known_calls == unknown_calls == 1


def test_plain_bcrypt_hash_and_unknown_email_cost_the_same(app, login, shop, bcrypt_calls):
    """An account whose hash predates the pre-hash (plain bcrypt): still one bcrypt check, no 500."""
    owner = shop.vendor.owner
    owner.password_hash = bcrypt.hashpw(b"owner-password-1", bcrypt.gensalt(4)).decode()
    db.session.commit()
    for password in (LONG, "owner-password-1"):
        bcrypt_calls.clear()
        login(owner.email, password, target=app.test_client())
        assert len(bcrypt_calls) == 1
    assert login(owner.email, "owner-password-1", target=app.test_client()).status_code == 302
    assert login(owner.email, LONG, target=app.test_client()).status_code == 401


def test_plain_bcrypt_hash_of_a_long_password_verifies_as_before(app, login, shop):
    """bcrypt before version 5 hashed the first 72 bytes of a longer password: such a hash still logs in."""
    owner = shop.vendor.owner
    owner.password_hash = bcrypt.hashpw(LONG.encode()[:72], bcrypt.gensalt(4)).decode()
    db.session.commit()
    assert login(owner.email, LONG, target=app.test_client()).status_code == 302


def test_a_long_new_password_works_in_full(owner, shop, login, app):
    response = owner.post("/account/password", {"current_password": "owner-password-1", "new_password": LONG,
                                                "confirm": LONG})
    assert response.status_code == 302
    db.session.rollback()
    assert db.session.get(type(shop.vendor.owner), shop.vendor.owner.id).password_hash.startswith("bcrypt-sha256$")
    assert login(shop.vendor.owner.email, LONG, target=app.test_client()).status_code == 302
    # every byte counts: a password that differs after the 72nd byte is wrong
    assert login(shop.vendor.owner.email, LONG[:-1] + "y", target=app.test_client()).status_code == 401


def test_a_too_long_new_password_is_a_form_error(owner):
    too_long = "p" * 201
    response = owner.post("/account/password", {"current_password": "owner-password-1", "new_password": too_long,
                                                "confirm": too_long})
    assert response.status_code == 422
    assert "At most 200 characters." in response.get_data(as_text=True)


def test_a_too_long_login_password_gets_the_same_answer(app, login, shop):
    known = login(shop.vendor.owner.email, "p" * 300, target=app.test_client())
    unknown = login("nobody-here@example.com", "p" * 300, target=app.test_client())
    assert known.status_code == unknown.status_code == 401
    assert "Wrong email or password." in known.get_data(as_text=True)
    assert "Wrong email or password." in unknown.get_data(as_text=True)


def test_staff_login_with_a_long_password(owner, app, login):
    response = owner.post("/staff/users", {"email": "longpass@shop.test", "name": "Long", "password": LONG})
    assert response.status_code == 303
    assert login("longpass@shop.test", LONG, target=app.test_client()).headers["Location"].endswith("/tablet")

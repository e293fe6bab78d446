"""Login, logout, password, roles, suspended shops, CSRF on every form, and vendors never seeing each other."""
import pytest

from portal.extensions import db
from portal.services import accounts


def test_login_redirects_each_role(login, shop, factories, client):
    assert login(shop.vendor.owner.email, "owner-password-1").headers["Location"].endswith("/dashboard")
    staff = factories.user(shop.vendor, role="staff")
    other = shop.vendor.owner._sa_instance_state.session  # noqa: F841 (keeps the session alive)
    from flask import Flask  # noqa: F401

    c2 = client.application.test_client()
    assert login(staff.email, staff.plain_password, target=c2).headers["Location"].endswith("/tablet")
    admin = factories.user(None, role="admin")
    c3 = client.application.test_client()
    assert login(admin.email, admin.plain_password, target=c3).headers["Location"].endswith("/admin/")


def test_bad_credentials_get_one_generic_message(login, shop):
    wrong_password = login(shop.vendor.owner.email, "nope-nope-nope")
    unknown_email = login("nobody@example.com", "nope-nope-nope")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert "Wrong email or password." in wrong_password.get_data(as_text=True)
    assert wrong_password.get_data(as_text=True).count("Wrong email or password.") == 1
    assert "Wrong email or password." in unknown_email.get_data(as_text=True)


def test_session_cookie_flags(login, shop):
    response = login(shop.vendor.owner.email, "owner-password-1")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_secure_cookie_in_production(app):
    from portal.config import load_config
    from flask import Flask

    prod = Flask("prod")
    prod.instance_path = app.instance_path
    load_config(prod, {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "PIN_PEPPER": "p" * 40})
    assert prod.config["SESSION_COOKIE_SECURE"] is True


def test_open_redirect_is_ignored(client, shop):
    page = client.get("/login")
    from support import csrf_from

    response = client.post("/login?next=https://evil.example/", data={
        "email": shop.vendor.owner.email, "password": "owner-password-1",
        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/dashboard"


def test_anonymous_is_sent_to_login(client):
    for path in ("/dashboard", "/tablet", "/programs", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_logout(owner):
    response = owner.post("/logout")
    assert response.status_code == 302
    assert owner.client.get("/dashboard").status_code == 302


def test_change_password(owner, shop, login, app):
    response = owner.post("/account/password", {"current_password": "wrong", "new_password": "a-new-password-1",
                                                "confirm": "a-new-password-1"})
    assert response.status_code == 422 and "The current password is wrong." in response.get_data(as_text=True)
    response = owner.post("/account/password", {"current_password": "owner-password-1",
                                                "new_password": "short", "confirm": "short"})
    assert response.status_code == 422 and "At least 10 characters." in response.get_data(as_text=True)
    response = owner.post("/account/password", {"current_password": "owner-password-1",
                                                "new_password": "a-new-password-1", "confirm": "a-new-password-1"})
    assert response.status_code == 302
    assert login(shop.vendor.owner.email, "a-new-password-1", target=app.test_client()).status_code == 302


@pytest.mark.parametrize("path", ["/dashboard", "/programs", "/staff", "/customers", "/programs/new",
                                  "/customers/import", "/exports/cards.csv"])
def test_staff_only_reach_the_tablet(staff, path):
    assert staff.get(path).status_code == 403
    assert staff.get("/tablet").status_code == 200


def test_admin_is_not_a_vendor_and_owner_is_not_an_admin(admin, owner):
    assert admin.get("/dashboard").status_code == 403
    assert owner.get("/admin/").status_code == 403


def test_suspended_vendor_sessions_stop(owner, staff, shop, login, app):
    assert owner.get("/dashboard").status_code == 200
    accounts.set_vendor_active(shop.vendor, False)
    db.session.commit()
    response = owner.get("/dashboard")
    assert response.status_code == 403 and "suspended" in response.get_data(as_text=True)
    assert staff.get("/tablet").status_code == 403
    assert login(shop.vendor.owner.email, "owner-password-1", target=app.test_client()).status_code == 401
    assert shop.api.get("/api/v1/vendor/loyalty/programs").status_code == 403


def test_disabled_staff_account_stops(owner, staff, staff_user):
    response = owner.post(f"/staff/users/{staff_user.id}/active", {"active": "0"})
    assert response.status_code == 303
    assert staff.get("/tablet").status_code in (302, 403)


class TestOtherVendorIsNotFound:
    @pytest.fixture
    def other(self, factories):
        vendor = factories.vendor("Other shop")
        program = factories.program(vendor, name="Theirs")
        card = factories.card(program)
        pin = factories.pin(program, "5555")
        tx_card = card
        from portal.services import operations

        _, tx = operations.add_stamps(factories.owner_actor(vendor), tx_card.card_number, {})
        db.session.commit()
        return {"program": program.id, "card": card.card_number, "pin": pin.id, "tx": tx.id}

    @pytest.mark.parametrize("method,path", [
        ("GET", "/programs/{program}/edit"), ("GET", "/programs/{program}/poster"),
        ("GET", "/programs/{program}/qr.png"), ("GET", "/programs/{program}/qr.svg"),
        ("POST", "/programs/{program}/edit"), ("POST", "/programs/{program}/active"),
        ("POST", "/programs/{program}/validate"), ("POST", "/programs/{program}/logo"),
        ("GET", "/customers/{card}"), ("POST", "/customers/{card}/adjust"),
        ("GET", "/customers/{card}/replace"), ("POST", "/customers/{card}/replace"),
        ("GET", "/customers/{card}/merge"), ("POST", "/customers/{card}/merge"),
        ("GET", "/staff/pins/{pin}/delete"),
        ("POST", "/transactions/{tx}/void"), ("GET", "/tablet/card/{card}"), ("POST", "/tablet/card/{card}"),
        ("POST", "/staff/pins/{pin}/reset"), ("POST", "/staff/pins/{pin}/unlock"),
        ("POST", "/staff/pins/{pin}/delete"), ("GET", "/exports/cards.csv?program_id={program}"),
        ("GET", "/dashboard?program_id={program}"),
    ])
    def test_404(self, owner, other, method, path):
        url = path.format(**other)
        if method == "GET":
            response = owner.get(url)
        else:
            response = owner.post(url, {"action": "stamp", "reason": "x", "delta": "1", "active": "0"})
        assert response.status_code == 404, (url, response.status_code)
        db.session.rollback()
        from portal.models import LoyaltyCard

        assert db.session.query(LoyaltyCard).filter_by(card_number=other["card"]).one().stamps == 1

    def test_pin_for_other_program_refused(self, owner, other):
        response = owner.post("/staff/pins", {"program_id": str(other["program"]), "staff_name": "Mallory"})
        assert response.status_code == 404


# Every state-changing form: without a CSRF token the request is refused and nothing changes.
CSRF_ROUTES = [
    "/login", "/logout", "/account/password", "/programs/new", "/programs/validate", "/programs/{stamps}/edit",
    "/programs/{stamps}/validate", "/programs/{stamps}/active", "/programs/{stamps}/logo", "/staff/pins",
    "/staff/pins/{pin}/reset", "/staff/pins/{pin}/unlock", "/staff/pins/{pin}/delete", "/staff/users",
    "/staff/users/1/active", "/customers/{card}/adjust", "/transactions/1/void", "/customers/import",
    "/tablet/card/{card}", "/customers/{card}/replace", "/customers/{card}/merge",
    "/staff/logout-everywhere", "/programs/{stamps}/relevance", "/tablet/undo/1", "/settings",
    "/staff/signals/review", "/messages/new", "/programs/{stamps}/nudges",
]
ADMIN_CSRF_ROUTES = ["/admin/vendors", "/admin/vendors/{vendor}/active", "/admin/ledger"]


def _all_post_rules(app):
    return {r.rule for r in app.url_map.iter_rules() if "POST" in r.methods and not r.rule.startswith("/api/")}


def test_csrf_list_covers_every_form_route(app):
    listed = {p.replace("{stamps}", "<int:program_id>").replace("{pin}", "<int:pin_id>")
              .replace("{card}", "<card_number>").replace("{vendor}", "<int:vendor_id>")
              .replace("/staff/users/1/", "/staff/users/<int:user_id>/")
              .replace("/transactions/1/", "/transactions/<int:transaction_id>/")
              .replace("/tablet/card/<card_number>", "/tablet/card/<number>")
              .replace("/tablet/undo/1", "/tablet/undo/<int:transaction_id>")
              for p in CSRF_ROUTES + ADMIN_CSRF_ROUTES}
    # Customers' routes (/p/ enrolment, /c/ card, /s/ sign-in links) are checked in tests/customer.
    missing = {r for r in _all_post_rules(app) if not r.startswith(("/p/", "/c/", "/s/"))} - listed
    assert not missing, missing


@pytest.mark.parametrize("path", CSRF_ROUTES)
def test_csrf_required_vendor(owner, shop, path):
    url = path.format(stamps=shop.stamps.id, pin=shop.pin.id, card=shop.stamp_card.card_number)
    response = owner.post(url, {"action": "stamp", "name": "Hacked", "delta": "5", "reason": "x",
                                "staff_name": "Eve", "active": "0"}, csrf=False)
    assert response.status_code == 400, url
    assert "Your form expired" in response.get_data(as_text=True)
    db.session.rollback()
    assert shop.stamps.name == "Coffee card" and shop.stamps.active
    assert db.session.get(type(shop.stamp_card), shop.stamp_card.id).stamps == 0


@pytest.mark.parametrize("path", ADMIN_CSRF_ROUTES)
def test_csrf_required_admin(admin, shop, path):
    response = admin.post(path.format(vendor=shop.vendor.id), {"active": "0", "name": "X"}, csrf=False)
    assert response.status_code == 400
    db.session.rollback()
    assert db.session.get(type(shop.vendor), shop.vendor.id).active




def test_staff_pages_speak_the_vendors_language_unless_the_user_chose(shop, factories, as_user):
    from portal.extensions import db as _db

    shop.vendor.locale = "de"
    _db.session.commit()
    staff = as_user(factories.user(shop.vendor, role="staff"))
    assert '<html lang="de">' in staff.get("/tablet").get_data(as_text=True)
    french_user = factories.user(shop.vendor, role="staff")
    french_user.locale = "fr"
    _db.session.commit()
    french = as_user(french_user)
    assert '<html lang="fr">' in french.get("/tablet").get_data(as_text=True)
    # The switcher wins, and sticks for the session.
    assert '<html lang="lb">' in french.get("/tablet?lang=lb").get_data(as_text=True)
    assert '<html lang="lb">' in french.get("/tablet").get_data(as_text=True)


def test_front_door_sends_visitors_to_login_and_users_to_their_page(client, factories, login):
    assert "/login" in client.get("/").headers["Location"]
    vendor = factories.vendor()
    login(vendor.owner.email, "owner-password-1")
    assert client.get("/").headers["Location"].endswith("/dashboard")

"""Sessions end when they should: a session cookie copied before a logout, a password change, a disabled account
or an owner's "log out everywhere" no longer works; staff sessions end after STAFF_IDLE_TIMEOUT_MINUTES idle."""
import datetime as dt

import pytest
import time_machine

from portal.services import clock


def copy_of(browser, app):
    """A second client holding a copy of ``browser``'s session cookie (what a thief would have)."""
    cookie = browser.client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def works(client, path):
    response = client.get(path)
    return response.status_code == 200


def test_a_copied_cookie_works_until_the_session_ends(owner, app):
    """(The precondition of the tests below: a copy does work while the session is alive.)"""
    assert works(copy_of(owner, app), "/dashboard")


def test_logout_ends_a_copied_cookie(owner, app):
    thief = copy_of(owner, app)
    assert owner.post("/logout").status_code == 302
    assert not works(owner.client, "/dashboard")
    response = thief.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_password_change_ends_other_sessions_but_not_this_one(owner, shop, app, as_user):
    thief = copy_of(owner, app)
    other_device = as_user(shop.vendor.owner)
    response = owner.post("/account/password", {"current_password": "owner-password-1",
                                                "new_password": "a-new-password-1", "confirm": "a-new-password-1"})
    assert response.status_code == 302
    page = owner.client.get("/dashboard")  # the session that changed it stays
    assert page.status_code == 200 and "Your password was changed." in page.get_data(as_text=True)
    assert not works(thief, "/dashboard")
    assert not works(other_device.client, "/dashboard")


def test_disabling_a_staff_account_ends_its_sessions_for_good(owner, staff, staff_user, app):
    thief = copy_of(staff, app)
    assert owner.post(f"/staff/users/{staff_user.id}/active", {"active": "0"}).status_code == 303
    assert owner.post(f"/staff/users/{staff_user.id}/active", {"active": "1"}).status_code == 303
    # enabled again: the account can log in, but the sessions from before stay ended
    assert not works(thief, "/tablet")
    assert not works(staff.client, "/tablet")


def test_log_out_everywhere_ends_every_session_of_the_shop_but_the_owners_current_one(owner, staff, shop, app,
                                                                                       as_user, factories):
    owner_copy = copy_of(owner, app)
    staff_copy = copy_of(staff, app)
    other_shop = factories.vendor("Elsewhere")
    outsider = as_user(other_shop.owner)
    page = owner.get("/staff").get_data(as_text=True)
    assert "Log out everywhere" in page
    response = owner.post("/staff/logout-everywhere")
    assert response.status_code == 303
    assert "You stay logged in here." in owner.get("/staff").get_data(as_text=True)
    assert works(owner.client, "/dashboard")
    for client, path in ((owner_copy, "/dashboard"), (staff_copy, "/tablet"), (staff.client, "/tablet")):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert works(outsider.client, "/dashboard")  # another shop's sessions are not touched


def test_staff_may_not_log_out_the_shop(staff):
    assert staff.post("/staff/logout-everywhere").status_code == 403


def test_a_cookie_from_before_session_versions_is_refused(shop):
    """Cookies issued before the upgrade held a bare user id: they log in again once."""
    from portal.services.accounts import user_for_session

    owner_id = shop.vendor.owner.id
    assert user_for_session(f"{owner_id}:0") is shop.vendor.owner
    assert user_for_session(str(owner_id)) is None
    assert user_for_session(f"{owner_id}:1") is None
    assert user_for_session("x:0") is None and user_for_session(None) is None and user_for_session("") is None


class TestIdleStaffSession:
    def test_staff_session_ends_after_the_idle_timeout(self, staff, app):
        assert app.config["STAFF_IDLE_TIMEOUT_MINUTES"] == 30
        start = clock.now()
        with time_machine.travel(start + dt.timedelta(minutes=29), tick=False):
            assert works(staff.client, "/tablet")  # in use: the idle clock starts again
        with time_machine.travel(start + dt.timedelta(minutes=58), tick=False):
            assert works(staff.client, "/tablet")
        with time_machine.travel(start + dt.timedelta(minutes=89), tick=False):
            response = staff.client.get("/tablet")
            assert response.status_code == 302 and response.headers["Location"].endswith("/login")
            page = staff.client.get("/login").get_data(as_text=True)
            assert "You were logged out after 30 minutes without activity." in page
            assert not works(staff.client, "/tablet")

    def test_htmx_requests_get_a_whole_page_redirect(self, staff, shop):
        start = clock.now()
        with time_machine.travel(start + dt.timedelta(minutes=31), tick=False):
            response = staff.htmx("GET", "/tablet/search?q=1")
            assert response.headers.get("HX-Redirect") == "/login"

    def test_owners_have_no_idle_timeout(self, owner):
        with time_machine.travel(clock.now() + dt.timedelta(hours=5), tick=False):
            assert works(owner.client, "/dashboard")

    @pytest.mark.parametrize("app_config", [{"STAFF_IDLE_TIMEOUT_MINUTES": 0}], indirect=True)
    def test_zero_turns_it_off(self, staff):
        with time_machine.travel(clock.now() + dt.timedelta(hours=5), tick=False):
            assert works(staff.client, "/tablet")

    @pytest.mark.parametrize("app_config", [{"STAFF_IDLE_TIMEOUT_MINUTES": 5}], indirect=True)
    def test_configurable(self, staff):
        with time_machine.travel(clock.now() + dt.timedelta(minutes=6), tick=False):
            assert not works(staff.client, "/tablet")

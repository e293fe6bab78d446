"""Fixtures for the portal pages: logged-in clients per role and a CSRF-aware form poster."""
from __future__ import annotations

import pytest

from portal_helpers import Browser


@pytest.fixture
def as_user(app, login):
    """``as_user(user)`` → a Browser logged in as that user (its own cookie jar)."""

    def make(user):
        client = app.test_client()
        response = login(user.email, user.plain_password, target=client)
        assert response.status_code == 302, response.get_data(as_text=True)
        browser = Browser(client)
        browser.get("/account/password")
        return browser

    return make


@pytest.fixture
def owner(shop, as_user):
    return as_user(shop.vendor.owner)


@pytest.fixture
def staff_user(shop, factories):
    return factories.user(shop.vendor, role="staff")


@pytest.fixture
def staff(staff_user, as_user):
    return as_user(staff_user)


@pytest.fixture
def admin_user(factories):
    return factories.user(None, role="admin")


@pytest.fixture
def admin(admin_user, as_user):
    return as_user(admin_user)


@pytest.fixture
def server_errors(monkeypatch):
    """Tracebacks of unhandled errors logged by the app during the test (for failure messages)."""
    import traceback

    import portal.web

    seen: list[str] = []
    original = portal.web.log.exception

    def record(*args, **kwargs):
        seen.append(traceback.format_exc())
        return original(*args, **kwargs)

    monkeypatch.setattr(portal.web.log, "exception", record)
    return lambda: "\n".join(seen)

"""The login form is rate-limited (the limiter is off in the other tests)."""
import pytest


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT": "3 per minute"}


def test_login_is_rate_limited(client, login, shop):
    statuses = [login(shop.vendor.owner.email, "wrong-password-x").status_code for _ in range(4)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3] == 429
    response = login(shop.vendor.owner.email, "owner-password-1")
    assert response.status_code == 429 and response.headers.get("Retry-After")
    assert client.get("/login").status_code == 200  # only attempts (POST) are counted

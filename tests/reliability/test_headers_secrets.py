"""Security headers, cookies, production start-up checks, rate limits, and no secrets in the logs."""
from __future__ import annotations

import logging
import re

import pytest

from portal import create_app
from tests.conftest import TEST_CONFIG, csrf_from


def _csp(response) -> dict[str, str]:
    policy = response.headers.get("Content-Security-Policy", "")
    return {part.split()[0]: part for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize("path", ["/login", "/api/v1/loyalty/programs/nothing-here", "/no-such-page"])
def test_security_headers_on_pages_and_api(client, path):
    response = client.get(path)
    csp = _csp(response)
    assert csp, "no Content-Security-Policy"
    whole = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in whole and "unsafe-eval" not in whole
    assert csp["script-src"] == "script-src 'self'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["object-src"] == "object-src 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers.get("Referrer-Policy") in {"same-origin", "strict-origin-when-cross-origin", "no-referrer"}
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP in development


def test_pages_have_no_inline_scripts_or_handlers(client):
    html = client.get("/login").get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline on…= handler"


def test_hsts_over_https(client):
    response = client.get("/login", base_url="https://loyalty.example")
    hsts = response.headers.get("Strict-Transport-Security", "")
    assert "max-age=" in hsts and int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 15552000


@pytest.fixture
def production_app(database_url, tmp_path):
    instance = tmp_path / "instance-prod"
    instance.mkdir()
    config = {**TEST_CONFIG, "TESTING": False, "APP_ENV": "production", "DATABASE_URL": database_url,
              "SECRET_KEY": "p" * 48, "PIN_PEPPER": "q" * 48}
    application = create_app(config)
    application.instance_path = str(instance)
    yield application
    from portal.extensions import db

    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def test_production_session_cookie_is_secure_httponly_samesite(production_app, factories):
    vendor = factories.vendor(password="owner-password-1")
    client = production_app.test_client()
    page = client.get("/login", base_url="https://loyalty.example")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post("/login", base_url="https://loyalty.example",
                           headers={"Referer": "https://loyalty.example/login"},  # CSRF over HTTPS checks it
                           data={"email": vendor.owner.email, "password": "owner-password-1", "csrf_token": token})
    assert response.status_code in (302, 303), response.status_code
    cookies = [v for k, v in response.headers.items() if k.lower() == "set-cookie"]
    session = [c for c in cookies if c.startswith("session=")]
    assert session, cookies
    for cookie in session + [c for c in cookies if c.startswith("remember_token=")]:
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite"} <= attrs, cookie
        assert re.search(r"SameSite=(Lax|Strict)", cookie, re.I), cookie
    assert "Strict-Transport-Security" in response.headers


@pytest.mark.parametrize("missing", ["SECRET_KEY", "PIN_PEPPER"])
def test_production_refuses_to_start_without_secrets(database_url, tmp_path, missing, monkeypatch):
    monkeypatch.delenv(missing, raising=False)
    config = {**TEST_CONFIG, "APP_ENV": "production", "DATABASE_URL": database_url,
              "SECRET_KEY": "p" * 48, "PIN_PEPPER": "q" * 48}
    config[missing] = ""
    with pytest.raises(RuntimeError, match=missing):
        create_app(config)


def test_production_refuses_short_secrets(database_url):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({**TEST_CONFIG, "APP_ENV": "production", "DATABASE_URL": database_url,
                    "SECRET_KEY": "short", "PIN_PEPPER": "q" * 48})


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT": "3 per minute"}],
                         indirect=True)
def test_login_rate_limit(client, factories):
    vendor = factories.vendor()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    statuses = [client.post("/login", data={"email": vendor.owner.email, "password": "wrong-password",
                                            "csrf_token": token}).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] or all(s in (200, 401, 422) for s in statuses[:3]), statuses
    assert statuses[3:] == [429, 429], statuses
    # …and the right password is refused too while limited
    response = client.post("/login", data={"email": vendor.owner.email, "password": "owner-password-1",
                                           "csrf_token": token})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "ENROLL_RATE_LIMIT": "3 per minute"}],
                         indirect=True)
def test_enrolment_rate_limit(client, factories):
    vendor = factories.vendor()
    program = factories.program(vendor)
    url = f"/api/v1/loyalty/programs/{program.slug}/enroll"
    statuses = [client.post(url, json={"name": f"P {i}", "email": f"p{i}@example.com", "consent": True}).status_code
                for i in range(5)]
    assert statuses == [201, 201, 201, 429, 429], statuses
    response = client.post(url, json={"name": "Late", "email": "late@example.com", "consent": True})
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


def _full_flow_secrets(app, client, factories, make_api, login) -> dict[str, str]:
    """Logins (wrong and right), API keys (wrong and right), PINs (wrong and right), an enrolment, the Apple web
    service with right and wrong tokens; returns the secrets used."""
    password = "Owner-Secret-Password-93127"
    vendor = factories.vendor(password=password)
    program = factories.program(vendor, require_pin=True, cooldown_minutes=0, daily_stamp_limit=0)
    pin = factories.pin(program, "80426517")
    card = factories.card(program)
    key = factories.api_key(vendor)
    api = make_api(key)
    secrets = {"password": password, "pin": "80426517", "api key": key, "apple token": card.apple_auth_token,
               "secret key": app.config["SECRET_KEY"], "pin pepper": app.config["PIN_PEPPER"],
               "wrong password": "Wrong-Secret-Password-55810", "wrong pin": "91735528",
               "wrong key": "lk_wrongwrongwrongwrongwrongwrongwrong0000"}
    stamps = f"/api/v1/vendor/loyalty/cards/{card.card_number}/stamps"
    assert login(vendor.owner.email, secrets["wrong password"]).status_code in (200, 401, 422)
    assert login(vendor.owner.email, password).status_code in (302, 303)
    assert make_api(secrets["wrong key"]).post(stamps, json={"count": 1}).status_code == 401
    assert api.post(stamps, json={"count": 1, "staff_pin": secrets["wrong pin"]}).status_code == 403
    assert api.post(stamps, json={"count": 1, "staff_pin": pin.plain_pin}).status_code == 201
    assert api.post(stamps, json={"count": 1, "staff_pin": "12"}).status_code in (403, 422)
    client.post(f"/api/v1/loyalty/programs/{program.slug}/enroll", json={"name": "New", "email": "new@example.com"})
    apple = f"/api/v1/loyalty/apple/v1/devices/{'d' * 32}/registrations/pass.lu.example.loyalty/{card.apple_serial}"
    client.post(apple, json={"pushToken": "a" * 64}, headers={"Authorization": f"ApplePass {card.apple_auth_token}"})
    client.post(apple, json={"pushToken": "a" * 64}, headers={"Authorization": "ApplePass wrong-token-0000000000"})
    client.get(f"/api/v1/loyalty/apple/v1/passes/pass.lu.example.loyalty/{card.apple_serial}",
               headers={"Authorization": f"ApplePass {card.apple_auth_token}"})
    client.post("/api/v1/loyalty/apple/v1/log", json={"logs": ["device says hello"]})
    return secrets


def _leaks(records, secrets) -> list[str]:
    text = "\n".join(f"{r.name} {r.getMessage()} {getattr(r, 'exc_text', '') or ''}" for r in records)
    return sorted(name for name, value in secrets.items() if value and value in text)


def test_no_secrets_in_application_logs(app, client, factories, make_api, login, caplog):
    """Every logger of the application and its web stack at DEBUG during a full flow with failures: no secret.
    (SQLAlchemy's engine logger stays at WARNING: at DEBUG it is SQL echo, which prints rows by design.)"""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    secrets = _full_flow_secrets(app, client, factories, make_api, login)
    records = [r for r in caplog.records if not r.name.startswith("sqlalchemy")]
    assert records, "nothing was logged at all"
    assert _leaks(records, secrets) == []


def test_no_secrets_in_logs_even_at_log_level_debug(database_url, factories):
    """As in production: a fresh process (no handler on the root logger yet), LOG_LEVEL=DEBUG. SQLAlchemy keeps
    its own loggers at WARNING unless asked (echo), so result rows — which hold the Apple auth token — are not
    logged; this test keeps it that way."""
    import os
    import subprocess
    import sys

    vendor = factories.vendor()
    card = factories.card(factories.program(vendor))
    public, token = card.public_token, card.apple_auth_token
    script = (  # the customer's card page reads the card row (which holds the Apple auth token)
        "from portal import create_app\n"
        "app = create_app()\n"
        f"assert app.test_client().get('/c/{public}').status_code == 200\n")
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": TEST_CONFIG["SECRET_KEY"],
           "PIN_PEPPER": TEST_CONFIG["PIN_PEPPER"], "LOG_LEVEL": "DEBUG"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert token not in out.stderr + out.stdout, "the Apple auth token is in the log"


@pytest.mark.parametrize("app_config", [{"PROXY_COUNT": 1}], indirect=True)
def test_behind_one_proxy_https_is_recognised(client):
    """docs/deploy.md: nginx terminates TLS and sends X-Forwarded-Proto; with PROXY_COUNT=1 the app knows."""
    response = client.get("/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Strict-Transport-Security" in response.headers
    plain = client.get("/login", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers


def test_forwarded_headers_ignored_without_proxy_count(client):
    response = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers

"""Settings: environment variables with safe development defaults.

Every key may also be set in ``instance/config.py`` (loaded after the defaults, before the environment).
Secrets (``SECRET_KEY``, ``PIN_PEPPER``) fall back to random values persisted under ``instance/`` in development;
in production (``APP_ENV=production``) the app refuses to start without real ones.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ENV_KEYS_STR = (
    "DATABASE_URL", "SECRET_KEY", "PIN_PEPPER", "PUBLIC_BASE_URL", "APP_ENV",
    "APPLE_PASS_TYPE_ID", "APPLE_TEAM_ID", "APPLE_PASS_CERT", "APPLE_PASS_KEY", "APPLE_PASS_KEY_PASSWORD",
    "APPLE_WWDR_CERT", "APNS_URL", "GOOGLE_WALLET_ISSUER_ID", "GOOGLE_SERVICE_ACCOUNT_FILE",
    "GOOGLE_WALLET_API_URL", "RATELIMIT_STORAGE_URI", "BABEL_DEFAULT_LOCALE", "LOG_LEVEL",
    "ENROLL_PROGRAM_RATE_LIMIT", "RECOVER_RATE_LIMIT", "RECOVER_ADDRESS_RATE_LIMIT",
)
#: The thresholds of the staff integrity signals (portal/services/staff_signals.py, docs/staff-signals.md).
STAFF_SIGNAL_DEFAULTS = {
    "STAFF_SIGNAL_FAVOURITE_MIN_STAMPS": 10,   # a card given at least this many stamps by one person in a week …
    "STAFF_SIGNAL_FAVOURITE_FACTOR": 5,        # … and at least this many times the shop's median card
    "STAFF_SIGNAL_HOUR_MIN_ACTIONS": 10,       # an hour with at least this many actions of one person …
    "STAFF_SIGNAL_HOUR_FACTOR": 3,             # … and this many times the shop's median for that weekday and hour
    "STAFF_SIGNAL_HOUR_BASELINE_WEEKS": 4,     # the weeks that median is taken over (the week itself included)
    "STAFF_SIGNAL_HOURS_GRACE_MINUTES": 15,    # actions this close to the opening hours count as inside
    "STAFF_SIGNAL_BURST_CARDS": 5,             # this many different cards given stamps or points by one person …
    "STAFF_SIGNAL_BURST_SECONDS": 60,          # … within this many seconds
    "STAFF_SIGNAL_QUICK_REDEEM_SECONDS": 120,  # a redemption this soon after the same person's stamps …
    "STAFF_SIGNAL_QUICK_REDEEM_PERCENT": 50,   # … that paid at least this share of the reward
}
ENV_KEYS_INT = ("BCRYPT_ROUNDS", "PIN_CACHE_SECONDS", "SQLITE_BUSY_TIMEOUT", "IDEMPOTENCY_TTL_HOURS", "PROXY_COUNT",
                "STAFF_IDLE_TIMEOUT_MINUTES", *STAFF_SIGNAL_DEFAULTS)
#: The values ``APP_ENV`` may take (case and surrounding spaces do not matter); any other value refuses to start.
APP_ENVS = ("development", "testing", "production")


def _persistent_secret(instance_path: str, name: str) -> str:
    """A random development secret kept in ``instance/<name>`` so sessions survive restarts."""
    path = Path(instance_path) / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


def default_config(instance_path: str) -> dict:
    return {
        "APP_ENV": "development",
        "SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(instance_path, "portal.sqlite3"),
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        "BCRYPT_ROUNDS": 12,
        # How long a verified PIN stays verified in this process (see docs/security.md).
        "PIN_CACHE_SECONDS": 600,
        # SQLite: seconds a writing request waits for the database's write lock before it is answered 503 busy.
        "SQLITE_BUSY_TIMEOUT": 5,
        "IDEMPOTENCY_TTL_HOURS": 48,
        **STAFF_SIGNAL_DEFAULTS,
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "LANGUAGES": ["en", "fr", "de", "lb"],
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "LOGIN_RATE_LIMIT": "10 per minute",
        "ENROLL_RATE_LIMIT": "20 per hour",
        # Enrolments per program (poster page and API together), whatever the IP: caps a bot spread over many.
        "ENROLL_PROGRAM_RATE_LIMIT": "120 per hour",
        # "Lost your card?" requests per IP, and per email address asked about.
        "RECOVER_RATE_LIMIT": "10 per hour",
        "RECOVER_ADDRESS_RATE_LIMIT": "3 per hour",
        "APPLE_LOG_RATE_LIMIT": "20 per minute",  # Wallet's unauthenticated POST …/apple/v1/log
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "APPLE_PASS_TYPE_ID": None,
        "APPLE_TEAM_ID": None,
        "APPLE_PASS_CERT": None,
        "APPLE_PASS_KEY": None,
        "APPLE_PASS_KEY_PASSWORD": None,
        "APPLE_WWDR_CERT": None,
        "APNS_URL": "https://api.push.apple.com",
        "GOOGLE_WALLET_ISSUER_ID": None,
        "GOOGLE_SERVICE_ACCOUNT_FILE": None,
        "GOOGLE_WALLET_API_URL": "https://walletobjects.googleapis.com",
        "LOG_LEVEL": "INFO",
        # Number of reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none).
        "PROXY_COUNT": 0,
        # A staff (tablet) session unused this long is ended (0: never).
        "STAFF_IDLE_TIMEOUT_MINUTES": 30,
    }


def load_config(app, overrides: dict | None) -> None:
    app.config.update(default_config(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    for key in ENV_KEYS_STR:
        if key in os.environ:
            app.config[key] = os.environ[key]
    for key in ENV_KEYS_INT:
        if key in os.environ:
            app.config[key] = int(os.environ[key])
    if app.config.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["DATABASE_URL"])
    if overrides:
        app.config.update(overrides)
        if "DATABASE_URL" in overrides:
            app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(overrides["DATABASE_URL"])

    app.config["APP_ENV"] = normalise_app_env(app.config.get("APP_ENV"))
    production = app.config["APP_ENV"] == "production"
    for name in ("SECRET_KEY", "PIN_PEPPER"):
        if not app.config.get(name):
            if production:
                raise RuntimeError(f"{name} must be set in production (APP_ENV=production).")
            app.config[name] = _persistent_secret(app.instance_path, name.lower())
        elif production and len(str(app.config[name])) < 32:
            raise RuntimeError(f"{name} is too short for production: use at least 32 random characters.")
    if production:
        app.config.setdefault("SESSION_COOKIE_SECURE", True)
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.config["PUBLIC_BASE_URL"] = app.config["PUBLIC_BASE_URL"].rstrip("/")


def normalise_app_env(value) -> str:
    """``APP_ENV`` in lower case without surrounding spaces (unset or empty: development). An unknown value refuses
    to start: a typo must not quietly run production as development (no Secure cookies, no secret checks)."""
    env = str(value if value is not None else "").strip().lower() or "development"
    if env not in APP_ENVS:
        raise RuntimeError(f"APP_ENV={value!r} is not one of {', '.join(APP_ENVS)} (case does not matter).")
    return env


def normalise_database_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` spellings and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url

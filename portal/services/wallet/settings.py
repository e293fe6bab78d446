"""Which wallets are configured, and the per-application cache of the expensive objects built from the settings.

The pass signer (certificates and key parsed once), the Google save-link signer (RSA key parsed once) and the
per-program pass resources live in ``app.extensions["loyalty_wallet"]``, so each Flask application (and each test
app) has its own, built on first use and shared by every request thread.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)

APPLE_KEYS = ("APPLE_PASS_TYPE_ID", "APPLE_TEAM_ID", "APPLE_PASS_CERT", "APPLE_PASS_KEY", "APPLE_WWDR_CERT")
GOOGLE_KEYS = ("GOOGLE_WALLET_ISSUER_ID", "GOOGLE_SERVICE_ACCOUNT_FILE")

#: Defaults of the wallet-only settings (read with ``setting()``; the environment may set them too).
DEFAULTS: dict[str, Any] = {
    "APNS_CA_FILE": None,  # a CA bundle to trust for APNS_URL (tests, TLS-intercepting proxies); unset = public CAs
    "WALLET_WORKER_LEASE_SECONDS": 120,  # how long a claimed outbox row is ours before another worker may retry it
    "WALLET_RETRY_BASE_SECONDS": 10.0,  # first retry after ~10 s, doubling
    "WALLET_RETRY_MAX_SECONDS": 3600.0,  # never wait more than an hour between attempts
    "WALLET_MAX_ATTEMPTS": 40,  # then the row is given up (kept, with last_error) — about 1.5 days of retries
    "WALLET_UPDATE_TAG_MARGIN_SECONDS": 30,  # see apple_service.updated_serials
    # Save-to-Google-Wallet links carry an ``exp``: the card page signs a fresh one on every view, and a link
    # returned by the enrolment API (perhaps e-mailed) keeps working for a month.
    "WALLET_SAVE_LINK_TTL_SECONDS": 30 * 24 * 3600,
    # Google's root keys for verifying save/delete callbacks (services/wallet/google_callbacks.py).
    "GOOGLE_CALLBACK_KEYS_URL": "https://pay.google.com/gp/m/issuer/keys",
}


def setting(name: str, app: Flask | None = None):
    import os

    app = app or current_app
    if name in app.config and app.config[name] is not None:
        return app.config[name]
    if name in os.environ:
        raw = os.environ[name]
        default = DEFAULTS.get(name)
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return raw
    return DEFAULTS.get(name)


def apple_configured(app: Flask | None = None) -> bool:
    app = app or current_app
    return all(app.config.get(k) for k in APPLE_KEYS)


def google_configured(app: Flask | None = None) -> bool:
    app = app or current_app
    return all(app.config.get(k) for k in GOOGLE_KEYS)


def cache(app: Flask | None = None) -> dict:
    app = app or current_app
    state = app.extensions.get("loyalty_wallet")
    if state is None:
        state = app.extensions.setdefault("loyalty_wallet", {"lock": threading.RLock()})
    return state


def cached(key: str, build, app: Flask | None = None):
    """Build once per application (thread-safe); a build that raises is remembered as ``None`` and logged."""
    state = cache(app)
    if key in state:
        return state[key]
    with state["lock"]:
        if key not in state:
            try:
                state[key] = build()
            except Exception:  # noqa: BLE001 - a broken wallet setup must not break the card page
                log.exception("wallet: could not build %s; run `flask loyalty wallet-check`", key)
                state[key] = None
        return state[key]


def pass_signer(app: Flask | None = None):
    """The process-wide PassSigner of this app, or None when Apple Wallet is not (usably) configured."""
    app = app or current_app
    if not apple_configured(app):
        return None

    def build():
        from .apple_pass import PassSigner

        c = app.config
        return PassSigner(c["APPLE_PASS_CERT"], c["APPLE_PASS_KEY"], c.get("APPLE_PASS_KEY_PASSWORD"),
                          c["APPLE_WWDR_CERT"])

    return cached("pass_signer", build, app)


def save_link_signer(app: Flask | None = None):
    """The cached Google SaveLinkSigner (origins = [PUBLIC_BASE_URL]), or None when Google is not configured."""
    app = app or current_app
    if not google_configured(app):
        return None

    def build():
        from urllib.parse import urlsplit

        from .google import SaveLinkSigner

        parts = urlsplit(app.config["PUBLIC_BASE_URL"])
        return SaveLinkSigner(app.config["GOOGLE_SERVICE_ACCOUNT_FILE"], [f"{parts.scheme}://{parts.netloc}"],
                              expires_in=int(setting("WALLET_SAVE_LINK_TTL_SECONDS", app)))

    return cached("save_link_signer", build, app)

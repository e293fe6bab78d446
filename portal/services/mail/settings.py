"""The mail settings: ``app.config`` first (``instance/config.py`` or ``create_app``), then the environment, then
the defaults below."""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app

DEFAULTS: dict[str, Any] = {
    "SMTP_HOST": None,  # unset: mail is written to instance/mail/*.eml and to the log (development)
    "SMTP_PORT": 587,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_STARTTLS": True,  # STARTTLS after connecting (port 587)
    "SMTP_SSL": False,  # TLS from the first byte (port 465); SMTP_STARTTLS is then ignored
    "SMTP_TIMEOUT_SECONDS": 30.0,
    "MAIL_FROM": None,  # e.g. "cards@example.lu"; unset: no-reply@<host of PUBLIC_BASE_URL>. Shown as the shop's name.
    "MAIL_WORKER_LEASE_SECONDS": 120,  # longer than a send can take (SMTP_TIMEOUT_SECONDS per step)
    "MAIL_RETRY_BASE_SECONDS": 30.0,  # first retry after ~30 s, doubling
    "MAIL_RETRY_MAX_SECONDS": 1800.0,
    "MAIL_MAX_ATTEMPTS": 20,  # about half a day of retries, then the row is given up (kept, with last_error)
    "MAIL_LINKS_PER_CARD_PER_HOUR": 3,  # sign-in emails to one card; more requests are answered alike, not sent
}


def setting(name: str, app: Flask | None = None):
    app = app or current_app
    if app.config.get(name) is not None:
        return app.config[name]
    default = DEFAULTS.get(name)
    if name in os.environ:
        raw = os.environ[name]
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return raw
    return default


def mail_from(app: Flask | None = None) -> str:
    """The sender's address (without a display name: the shop's name is put in front of it)."""
    from email.utils import parseaddr

    app = app or current_app
    configured = setting("MAIL_FROM", app)
    if configured:
        return parseaddr(configured)[1] or configured
    host = urlsplit(app.config["PUBLIC_BASE_URL"]).hostname or "localhost"
    return f"no-reply@{host}"


def smtp_configured(app: Flask | None = None) -> bool:
    return bool(setting("SMTP_HOST", app))

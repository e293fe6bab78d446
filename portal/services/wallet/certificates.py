"""Certificate watch: when the Apple pass signing certificate and Apple's WWDR intermediate expire.

``wallet-check`` and the operators' admin page show both ``notAfter`` dates and warn from
``EXPIRY_WARNING_DAYS`` (30) days ahead; once either has expired, pass downloads (the card page's .pkpass and the
web service's GET of a pass) answer 503 ``pass_certificate_expired`` with a page or JSON error instead of a pass
that Wallet would refuse to install. Time comes from ``clock.now()``.
"""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from flask import Flask, current_app

from .. import clock
from ..errors import PassCertificateExpired
from .apple_pass import EXPIRY_WARNING_DAYS
from .settings import pass_signer

__all__ = ["EXPIRY_WARNING_DAYS", "ensure_valid", "status"]

NAMES = {"pass": "pass certificate", "wwdr": "WWDR intermediate certificate"}


def _load(path: str | None) -> x509.Certificate | None:
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except (OSError, ValueError):
        return None  # wallet-check's configuration check names the unreadable file


def _entry(key: str, cert: x509.Certificate | None, now: dt.datetime) -> dict:
    if cert is None:
        return {"name": key, "label": NAMES[key], "not_after": None, "days_left": None, "state": "missing"}
    not_after = cert.not_valid_after_utc
    left = not_after - now
    if left <= dt.timedelta(0):
        state = "expired"
    elif left <= dt.timedelta(days=EXPIRY_WARNING_DAYS):
        state = "expiring"
    else:
        state = "ok"
    return {"name": key, "label": NAMES[key], "not_after": not_after,
            "days_left": left.days if left > dt.timedelta(0) else 0, "state": state}


def status(app: Flask | None = None) -> list[dict]:
    """Both certificates' ``notAfter`` and state ("ok", "expiring" within 30 days, "expired", "missing");
    empty when Apple Wallet is not configured at all."""
    app = app or current_app
    c = app.config
    if not c.get("APPLE_PASS_CERT") and not c.get("APPLE_WWDR_CERT"):
        return []
    now = clock.now()
    return [_entry("pass", _load(c.get("APPLE_PASS_CERT")), now), _entry("wwdr", _load(c.get("APPLE_WWDR_CERT")), now)]


def ensure_valid() -> None:
    """Before a pass is handed out: refuse with ``PassCertificateExpired`` once either certificate has expired.
    Reads the signer's parsed certificates (cached per application), so it costs two comparisons."""
    signer = pass_signer()
    if signer is None:
        return
    now = clock.now()
    if signer.certificate.not_valid_after_utc <= now or signer.wwdr_certificate.not_valid_after_utc <= now:
        raise PassCertificateExpired()

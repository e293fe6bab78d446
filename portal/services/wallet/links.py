"""The "Add to Apple Wallet" / "Add to Google Wallet" links of a card (None when that wallet is not configured)."""
from __future__ import annotations

import logging

from flask import current_app

from ...models import LoyaltyCard
from . import google_objects, passes
from .settings import save_link_signer

log = logging.getLogger(__name__)


def pkpass_url(card: LoyaltyCard) -> str | None:
    if not passes.available():
        return None
    return f"{current_app.config['PUBLIC_BASE_URL']}/c/{card.public_token}/pass.pkpass"


def google_save_url(card: LoyaltyCard) -> str | None:
    signer = save_link_signer()
    if signer is None:
        return None
    try:
        if card.google_object_id:
            # The worker already created class and object: the link only needs to name them (a short JWT).
            body = {"id": card.google_object_id, "classId": google_objects.class_id(card.program)}
            return signer.save_url(body)
        # Not created yet: the link carries the object and its class, so saving works before the worker ran.
        return signer.save_url(google_objects.object_body(card), google_objects.class_body(card.program))
    except Exception:  # noqa: BLE001 - a broken key must not break the card page
        log.exception("wallet: could not sign a Google save link")
        return None


def for_card(card: LoyaltyCard) -> dict:
    return {"pkpass_url": pkpass_url(card), "google_save_url": google_save_url(card)}

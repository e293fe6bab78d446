"""Google Wallet's save/delete callbacks: POST /api/v1/loyalty/google/callback (every class's
``callbackOptions.url``).

Public (Google calls it), so nothing is trusted before the signature is verified (services/wallet/health.py,
google_callbacks.py). Answers: 200 ``{"status": "accepted" | "duplicate" | "ignored"}``; a refusal is the JSON
error envelope with a stable code (400 ``callback_malformed`` / ``callback_expired``, 401
``callback_signature_invalid`` / ``callback_key_expired``, 503 ``callback_keys_unavailable``, which Google retries).
"""
from __future__ import annotations

from flask import Blueprint, abort, request

from ...services.wallet import health
from ...services.wallet.settings import google_configured

bp = Blueprint("google_api", __name__, url_prefix="/loyalty/google")


@bp.post("/callback")
def callback():
    if not google_configured():
        abort(404)
    return health.google_callback(request.get_data(cache=False))

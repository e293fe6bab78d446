"""Helpers shared by the API groups: authentication, JSON bodies, idempotent balance changes."""
from __future__ import annotations

import functools
import json

from flask import g, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from ...services import accounts, idempotency
from ...services.errors import BadRequest, Forbidden, Unauthorized, VendorSuspended


def authenticate(scope: str) -> None:
    """Resolve the bearer API key into ``g.actor``; ``scope`` is "vendor" or "admin"."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    key = accounts.resolve_api_key(token) if token else None
    if key is None:
        raise Unauthorized(_l("A valid API key is required (Authorization: Bearer …)."))
    if key.scope != scope:
        raise Forbidden(_l("This API key cannot use this part of the API."))
    if not key.vendor_active:
        raise VendorSuspended()
    g.api_key = key
    g.actor = accounts.actor_for_api_key(key)
    if key.vendor_locale is not None:
        g.fallback_locale = key.vendor_locale


def json_body() -> dict:
    """The JSON object sent, {} for an empty body; a clear 400 for anything else."""
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    if request.content_length is None and request.max_content_length is not None \
            and len(raw) >= request.max_content_length:
        raise RequestEntityTooLarge()  # Werkzeug cuts a streamed (chunked) body at the limit instead of refusing it
    if not request.is_json:
        raise BadRequest(_l("Send a JSON body with Content-Type: application/json."))
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadRequest(_l("The body is not valid JSON."))
    if not isinstance(data, dict):
        raise BadRequest(_l("The request body must be a JSON object."))
    return data


def query_int(name: str, default: int, minimum: int = 0, maximum: int = 10_000) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):  # str.isdigit() alone accepts '²', which int() refuses
        raise BadRequest(_l("Query parameter %(name)s must be a whole number.", name=name),
                         fields={name: [_l("Must be a whole number.")]})
    return max(minimum, min(maximum, int(raw) if len(raw) <= 18 else maximum))  # int() refuses > 4300 digits


def balance_change(view):
    """Make a balance-changing POST idempotent with the ``Idempotency-Key`` header (``idempotency.run_once``).

    The view receives ``idempotency_key`` and returns ``(body_dict, status)``, or ``(body_dict, status, card_id)``
    when the body shows a card's customer data (erasing that card redacts the stored copy). A replay with the same
    key and body returns the stored status and body (header ``Idempotent-Replayed: true``); the same key with another
    body is 422 ``idempotency_key_reused``. Refusals that leave a trace (a wrong PIN, a cooldown) are stored too, as the
    endpoint did run; other errors roll back with the claim, so the request can simply be retried.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        def work(key):
            body, status, *card = view(*args, idempotency_key=key, **kwargs)
            return (status, body, *card)

        status, body, replayed = idempotency.run_once(
            g.actor.idempotency_scope, request.headers.get("Idempotency-Key"),
            lambda: idempotency.request_fingerprint(request.method, request.path, json_body()), work,
            lambda error: (error.status, {"error": error.to_dict()}))
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        retry_after = (body.get("error") or {}).get("retry_after") if isinstance(body, dict) else None
        if retry_after is not None:  # a refusal (replayed or not) keeps its Retry-After header
            headers["Retry-After"] = str(retry_after)
        # Flask makes the JSON response from the body after the view's unit of work has committed: on SQLite the
        # write lock is not held while it is encoded.
        return body, status, headers

    return wrapper

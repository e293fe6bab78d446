"""Shared by every vendor view: the actor, refusals, and replay protection for balance-changing forms.

``handle_refusal`` is the one place that decides what happens to the request's transaction when a service refuses:
errors with ``keep_changes`` (a wrong PIN, a cooldown…) keep what the service flushed — the failed-PIN count and the
refusal log must persist, and are committed with the response by PortalFlask — every other error rolls back.

``run_once`` gives the HTML forms the same Idempotency-Key semantics as the JSON API, through the same wrapper
(``services.idempotency.run_once``): each rendered action form carries a fresh random key; the first request with
it claims the key, does the work and stores a small JSON outcome; a double tap or a network retry with the same key
replays that outcome instead of stamping twice.
"""
from __future__ import annotations

import secrets
from typing import Callable

from flask import request
from flask_login import current_user

from ...extensions import db
from ...services import accounts, idempotency
from ...services.actor import Actor
from ...services.errors import DomainError

# Never part of the fingerprint: the CSRF token changes, the key is the key, and a hash of a 4-digit PIN would be
# trivially reversible from the idempotency table.
FINGERPRINT_EXCLUDED = {"csrf_token", "idempotency_key", "staff_pin"}


def actor() -> Actor:
    return accounts.actor_for_user(current_user)


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(18)


def field_errors(error: DomainError) -> dict[str, list[str]]:
    return {name: [str(m) for m in (messages if isinstance(messages, (list, tuple)) else [messages])]
            for name, messages in (error.fields or {}).items()}


def refusal_notice(error: DomainError) -> dict:
    """What a page shows for a refusal: plain words, the stable code and when it becomes possible."""
    return {
        "kind": "refusal",
        "status": error.status,
        "code": error.code,
        "message": error.render_message(),
        "available_at": error.available_at.isoformat() if error.available_at else None,
        "retry_after": error.retry_after,
        "attempts_left": error.params.get("attempts_left"),
        "fields": field_errors(error),
    }


def handle_refusal(error: DomainError) -> dict:
    """Decide the transaction's fate for a caught refusal, then describe it for the page."""
    if not error.keep_changes:
        db.session.rollback()
    return refusal_notice(error)


def _fingerprint() -> str:
    fields = sorted((k, v) for k, v in request.form.items(multi=True) if k not in FINGERPRINT_EXCLUDED)
    return idempotency.request_fingerprint(request.method, request.path, fields)


def run_once(perform: Callable[[str | None], dict]) -> dict:
    """Run ``perform(idempotency_key)`` at most once per form key (``idempotency.run_once``, as the JSON API) and
    return its outcome (a JSON-able dict with ``kind`` "success" or "refusal"). A replay returns the stored
    outcome with ``replayed`` set."""
    key = (request.form.get("idempotency_key") or "").strip() or None

    def work(k):
        outcome = perform(k)
        outcome.setdefault("kind", "success")
        outcome.setdefault("status", 200)
        return outcome["status"], outcome

    def kept(error: DomainError):
        notice = refusal_notice(error)
        notice["kept"] = True
        return notice["status"], notice

    try:
        _status, outcome, replayed = idempotency.run_once(actor().idempotency_scope, key, _fingerprint, work, kept)
    except DomainError as error:  # a refusal that rolls back (with the claim: the same key may be tried again)
        return handle_refusal(error)
    if replayed:
        outcome["replayed"] = True
    return outcome

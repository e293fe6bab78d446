"""The one family of domain errors. Services raise them; the JSON API and the HTML pages translate them.

Each error carries a stable ``code`` (never translated), an HTTP ``status``, a translatable ``message`` and,
where it applies, ``retry_after`` (seconds) and ``available_at`` (when the action becomes possible again).
"""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l


def format_moment(moment: dt.datetime, tz_name: str | None) -> str:
    """'14:35' when ``moment`` is today in the vendor's timezone, else a short date and time; in the current locale."""
    from babel import dates

    from .clock import now, zone
    from .i18n import current_locale

    tz = zone(tz_name)
    locale = current_locale()
    if moment.astimezone(tz).date() == now().astimezone(tz).date():
        return dates.format_time(moment, "short", tzinfo=tz, locale=locale)
    return dates.format_datetime(moment, "short", tzinfo=tz, locale=locale)


class DomainError(Exception):
    code = "error"
    status = 400
    default_message = _l("The request could not be completed.")
    #: True when the refusal itself must be committed (failed PIN counts, the refusal log).
    keep_changes = False

    def __init__(self, message=None, *, retry_after: int | None = None, available_at: dt.datetime | None = None,
                 fields: dict | None = None, **params):
        self.message = message if message is not None else self.default_message
        self.retry_after = retry_after
        self.available_at = available_at
        self.fields = fields
        self.params = params
        super().__init__(self.code)

    def render_message(self) -> str:
        text = str(self.message)
        params = dict(self.params)
        if self.available_at is not None and "until" not in params:
            params["until"] = format_moment(self.available_at, params.get("tz"))
        if params:
            try:
                text = text % params
            except (KeyError, ValueError, TypeError):
                pass
        return text

    def to_dict(self) -> dict:
        body: dict = {"code": self.code, "message": self.render_message()}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        if self.available_at is not None:
            body["available_at"] = self.available_at.isoformat()
        if self.fields:
            body["fields"] = {k: [str(m) for m in v] if isinstance(v, (list, tuple)) else str(v)
                              for k, v in self.fields.items()}
        for key in ("attempts_left",):
            if key in self.params:
                body[key] = self.params[key]
        return body


class ValidationError(DomainError):
    code = "validation_error"
    status = 422
    default_message = _l("Some fields are not valid.")


class BadRequest(ValidationError):
    status = 400


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401
    default_message = _l("Authentication is required.")


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    default_message = _l("You are not allowed to do this.")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = _l("Not found.")


class PinRequired(DomainError):
    code = "pin_required"
    status = 403
    default_message = _l("This program requires a staff PIN.")


class PinInvalid(DomainError):
    code = "pin_invalid"
    status = 403
    keep_changes = True
    default_message = _l("Wrong PIN. %(attempts_left)s attempt(s) left before the PIN pad locks.")
    locked_message = _l("Wrong PIN. Too many wrong PINs: the PIN pad is locked until %(until)s.")


class PinLocked(DomainError):
    code = "pin_locked"
    status = 423
    keep_changes = True
    default_message = _l("Too many wrong PINs. The PIN pad is locked until %(until)s.")


class CooldownActive(DomainError):
    code = "cooldown_active"
    status = 429
    keep_changes = True
    default_message = _l("This card was stamped a moment ago. Next stamp possible at %(until)s.")


class DailyLimitReached(DomainError):
    code = "daily_limit_reached"
    status = 429
    keep_changes = True
    default_message = _l("This card reached today's limit of %(limit)s stamps. Next stamp possible at %(until)s.")


class InsufficientBalance(DomainError):
    code = "insufficient_balance"
    status = 409
    default_message = _l("The balance is too low for this.")


class ProgramInactive(DomainError):
    code = "program_inactive"
    status = 409
    default_message = _l("This program is paused.")


class Conflict(DomainError):
    code = "conflict"
    status = 409
    default_message = _l("This conflicts with existing data.")


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 422
    default_message = _l("This Idempotency-Key was already used with a different request.")


class VendorSuspended(DomainError):
    code = "vendor_suspended"
    status = 403
    default_message = _l("This shop's account is suspended.")


class CardReplaced(DomainError):
    """An old number of a card that was replaced (a lost phone) or merged into another card. Distinct from an
    unknown number (404): the number existed and must no longer be used. It never reveals the new number."""

    code = "card_replaced"
    status = 410
    default_message = _l("This card was replaced and no longer works. Ask the customer for their new card.")


class DatabaseBusy(DomainError):
    """The database's write lock stayed taken for longer than the busy timeout (SQLite): nothing was changed."""

    code = "busy"
    status = 503
    default_message = _l("The server is busy. Nothing was changed; please try again in a moment.")


class PassCertificateExpired(DomainError):
    """The Apple pass signing certificate (or Apple's WWDR intermediate) has expired: a pass signed with it would
    not install, so none is handed out until the operator renews it (docs/wallets.md §1.2)."""

    code = "pass_certificate_expired"
    status = 503
    default_message = _l("Apple Wallet passes are unavailable for the moment: the shop's pass certificate has "
                         "expired. Your card works as usual on this page and at the till.")


class CallbackRefused(DomainError):
    """A Google Wallet callback that is not what Google signs (docs/wallets.md: callbacks)."""

    code = "callback_malformed"
    status = 400
    default_message = _l("This is not a Google Wallet callback.")


class CallbackSignatureInvalid(CallbackRefused):
    code = "callback_signature_invalid"
    status = 401
    default_message = _l("The callback's signature does not verify with Google's keys.")


class CallbackKeyExpired(CallbackRefused):
    code = "callback_key_expired"
    status = 401
    default_message = _l("The callback was signed with an intermediate key that has expired.")


class CallbackExpired(CallbackRefused):
    code = "callback_expired"
    status = 400
    default_message = _l("The callback has expired.")


class CallbackKeysUnavailable(DomainError):
    """Google's root signing keys could not be fetched: Google retries a callback that failed."""

    code = "callback_keys_unavailable"
    status = 503
    default_message = _l("Google's signing keys are unavailable for the moment; try again later.")
class CardPendingConfirmation(DomainError):
    """A poster sign-up not yet seen at the till (the program's ``pending_signups``): it collects nothing until a
    stamp or points given with a staff PIN confirms it, so mass fake sign-ups earn nothing."""

    code = "card_pending_confirmation"
    status = 403
    keep_changes = True  # the refusal log keeps it
    default_message = _l("This card was made from the poster and is not confirmed yet: confirm it with your staff PIN "
                         "when you give its first stamp or points.")


class UndoRefused(DomainError):
    """A staff member's undo that the rules do not allow (``operations.undo_transaction``)."""

    code = "undo_refused"
    status = 409


class UndoWindowPassed(UndoRefused):
    code = "undo_window_passed"
    default_message = _l("Too late to undo: an action can be undone for %(minutes)s minutes, until %(until)s. "
                         "Ask the shop owner to correct it.")


class UndoNotLast(UndoRefused):
    code = "undo_not_last"
    default_message = _l("This can no longer be undone: something else was done to this card after it. "
                         "Ask the shop owner to correct it.")


class UndoNotYours(UndoRefused):
    code = "undo_not_yours"
    status = 403
    default_message = _l("Only the staff member who did this can undo it (with their own PIN or login).")


class UndoAlreadyDone(UndoRefused):
    code = "undo_already_done"
    default_message = _l("This action was already undone.")


class UndoNotPossible(UndoRefused):
    code = "undo_not_possible"
    default_message = _l("Only a stamp, points or a redemption can be undone.")

"""The staff's undo on the tablet: after a stamp, points or a redemption the result shows an "Undo" button with the
time left (``operations.UNDO_WINDOW``). It posts a plain form (works without JavaScript; htmx swaps the card panel
when it runs), replay-protected by its own idempotency key like every tablet action. The rules — own action, last
on the card, in time, once, PIN — are all in ``operations.undo_transaction``."""
from __future__ import annotations

import datetime as dt

from flask import request
from flask_babel import gettext as _

from ...services import cards, clock, operations
from ...services.errors import DomainError, NotFound, format_moment
from . import bp
from .helpers import actor, new_idempotency_key, refusal_notice, run_once


def undo_offer(card, notice: dict | None) -> dict | None:
    """The undo button for the action whose result ``notice`` shows, while its window is open."""
    if not notice or notice.get("kind") != "success" or not notice.get("undo_until"):
        return None
    until = dt.datetime.fromisoformat(notice["undo_until"])
    if until <= clock.now():
        return None
    return {"id": notice["transaction_id"], "until": until.isoformat(), "key": new_idempotency_key(),
            "at": format_moment(until, card.program.vendor.timezone), "pin": bool(notice.get("undo_pin")),
            "seconds": clock.seconds_until(until)}


def offer_fields(card, tx) -> dict:
    """What an action's outcome carries so that its result can offer the undo (stored with the outcome)."""
    return {"undo_until": operations.undo_deadline(tx).isoformat(),
            "undo_pin": card.program.require_pin or tx.staff_pin_id is not None}


def _undo(transaction_id: int, key: str | None) -> dict:
    data = {"staff_pin": request.form.get("staff_pin", "")}
    card, tx = operations.undo_transaction(actor(), transaction_id, data, idempotency_key=key)
    unit = _("stamps") if card.program.type == "stamps" else _("points")
    message = _("Undone. The balance is back to %(balance)s %(unit)s.", balance=card.balance, unit=unit)
    return {"kind": "success", "status": 200, "message": message, "card_number": card.card_number,
            "undone_transaction_id": transaction_id}


@bp.post("/tablet/undo/<int:transaction_id>")
def tablet_undo(transaction_id):
    from .tablet import _page  # the tablet page renders the result (imported here: tablet imports this module)

    if transaction_id > 2**31 - 1:
        outcome = refusal_notice(NotFound())
    else:
        outcome = run_once(lambda key: _undo(transaction_id, key))
    number = outcome.get("card_number") or request.form.get("card_number", "")
    try:
        card = cards.get_card(actor(), number)
    except DomainError as error:
        return _page(notice=outcome if outcome.get("kind") == "refusal" else refusal_notice(error), results=[],
                     status=outcome.get("status", error.status))
    return _page(card=card, notice=outcome, status=outcome.get("status", 200))

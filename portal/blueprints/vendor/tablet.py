"""The staff tablet: find a card (camera QR scan, card number, or search), then stamp, add points or redeem.

After each action only the card panel is re-rendered (an htmx fragment of the same template). Every action form
carries a fresh idempotency key, so a double tap or a retried request never changes a balance twice
(``helpers.run_once``). Refusals are explained in the vendor's language with when the action becomes possible.
"""
from __future__ import annotations

import segno
from flask import request
from flask_babel import gettext as _
from markupsafe import Markup

from ...forms import TabletActionForm, form_errors
from ...services import cards, clock, operations, programs, sign_in
from ...services.errors import CardReplaced, DomainError, NotFound
from ...web import render
from . import bp
from .helpers import actor, new_idempotency_key, refusal_notice, run_once
from .tablet_undo import offer_fields, undo_offer

ACTIONS = ("stamp", "redeem", "points")  # and "reward-<id>" for a points reward


def _panel_context(card, notice=None) -> dict:
    program = card.program
    context = {"card": card, "program": program, "notice": notice, "key": new_idempotency_key(),
               "number": cards.format_card_number(card.card_number), "next_stamp": None,
               "rewards": [], "pin_required": program.require_pin or card.pending, "active": program.active,
               "undo": undo_offer(card, notice)}
    if program.type == "stamps":
        need = program.stamps_required or 1
        context["progress"] = {"have": card.stamps, "need": need, "full": card.stamps >= need,
                               "percent": min(100, round(100 * card.stamps / need))}
        blocked = operations.next_stamp_allowed_at(card, program)
        if blocked is not None:
            code, until = blocked
            context["next_stamp"] = {"code": code, "until": until.isoformat(),
                                     "seconds": clock.seconds_until(until),
                                     "at": _format_moment(until, program.vendor.timezone)}
    else:
        rewards = programs.active_rewards(program)
        context["rewards"] = [{"id": r.id, "name": r.name, "cost": r.points_cost,
                               "affordable": card.points >= r.points_cost} for r in rewards]
        cheapest = min((r.points_cost for r in rewards), default=None)
        context["progress"] = {"have": card.points, "need": cheapest or 0,
                               "full": cheapest is not None and card.points >= cheapest,
                               "percent": min(100, round(100 * card.points / cheapest)) if cheapest else 0}
    return context


def _format_moment(moment, tz):
    from ...services.errors import format_moment

    return format_moment(moment, tz)


def _page(status=200, *, card=None, notice=None, results=None, q="", phone_link=None):
    context = _panel_context(card, notice) if card is not None else {"card": None, "notice": notice}
    return render("vendor/tablet.html", "work", status=status, results=results, q=q, phone_link=phone_link,
                  **context)


def _phone_link(number: str, form: TabletActionForm):
    """"Send the card to the customer's phone": a one-time sign-in link (10 minutes) shown as a QR code that the
    customer scans with their phone's camera. Made with the staff member's PIN when the program asks for one."""
    try:
        card, token, expires = sign_in.create_till_link(actor(), number, {"staff_pin": form.staff_pin.data})
    except DomainError as error:
        try:
            card = cards.get_card(actor(), number)
        except DomainError:
            return _page(notice=refusal_notice(error), results=[], status=error.status)
        return _page(card=card, notice=refusal_notice(error), status=error.status)
    svg = segno.make(sign_in.link_url(token), error="m", micro=False).svg_inline(
        scale=6, border=4, dark="#000", light="#fff", title=_("QR code that opens the card on the customer's phone"),
        svgclass="phone-qr", lineclass=None)
    link = {"svg": Markup(svg), "until": _format_moment(expires, card.program.vendor.timezone),
            "minutes": sign_in.TILL_MINUTES}
    response = _page(card=card, phone_link=link)
    response.headers["Cache-Control"] = "no-store"  # the QR is a credential to the card
    return response


@bp.get("/tablet")
def tablet():
    number = request.args.get("card")
    q = (request.args.get("q") or "").strip()[:100]
    if number:
        return tablet_card(number)
    if q:
        return tablet_search()
    return _page()


@bp.get("/tablet/search")
def tablet_search():
    q = (request.args.get("q") or "").strip()[:100]
    if not q:
        return _page(results=None, q=q)
    digits = "".join(ch for ch in q if ch.isdigit())
    if len(digits) == 10 and digits == q.replace(" ", "").replace("-", ""):
        try:
            card = cards.get_card(actor(), digits)
        except DomainError as error:
            return _page(notice=refusal_notice(error), results=[], q=q)
        return _page(card=card, q=q)
    return _page(results=cards.search_cards(actor(), q, limit=12), q=q)


@bp.get("/tablet/card/<number>")
def tablet_card(number):
    try:
        card = cards.get_card(actor(), number)
    except (NotFound, CardReplaced) as error:  # a number of any shape that names no card, or a retired one
        return _page(notice=refusal_notice(error), results=[], status=error.status)
    return _page(card=card)


def _perform(number: str, action: str, form: TabletActionForm, key: str | None) -> dict:
    act = actor()
    data = {"staff_pin": form.staff_pin.data or ""}
    if action == "stamp":
        card, tx = operations.add_stamps(act, number, data, idempotency_key=key)
        message = _("Stamp added: %(have)s of %(need)s.", have=card.stamps, need=card.program.stamps_required)
        if card.stamps >= card.program.stamps_required:
            message += " " + _("The reward is ready: %(reward)s.", reward=card.program.reward_text)
    elif action == "redeem":
        card, tx = operations.redeem_stamps(act, number, data, idempotency_key=key)
        message = _("Reward redeemed: %(reward)s.", reward=card.program.reward_text)
    elif action == "points":
        data["amount"] = form.amount.data or ""
        card, tx = operations.earn_points(act, number, data, idempotency_key=key)
        message = _("%(points)s points added. Balance: %(balance)s.", points=tx.delta, balance=card.points)
    else:
        data["reward_id"] = action.removeprefix("reward-")
        card, tx = operations.redeem_points(act, number, data, idempotency_key=key)
        message = _("Reward redeemed: %(reward)s. Balance: %(balance)s.", reward=tx.display_note, balance=card.points)
    return {"kind": "success", "status": 200, "message": message, "transaction_id": tx.id, **offer_fields(card, tx)}


@bp.post("/tablet/card/<number>")
def tablet_action(number):
    form = TabletActionForm()
    action = form.action.data or ""
    if not form.validate():
        outcome = {"kind": "refusal", "status": 422, "code": "validation_error", "fields": form_errors(form),
                   "message": " ".join(m for messages in form_errors(form).values() for m in messages)}
    elif action == "phone-link":
        return _phone_link(number, form)
    elif action not in ACTIONS and not (action.startswith("reward-") and action[7:].isdigit()):
        outcome = {"kind": "refusal", "status": 400, "code": "bad_request", "fields": {},
                   "message": _("Choose an action.")}
    else:
        outcome = run_once(lambda key: _perform(number, action, form, key))
    try:
        card = cards.get_card(actor(), number)
    except DomainError as error:
        return _page(notice=refusal_notice(error), results=[], status=error.status)
    return _page(card=card, notice=outcome, status=outcome.get("status", 200))

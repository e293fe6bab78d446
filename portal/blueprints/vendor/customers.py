"""Customers: live search, card detail with history, manual adjustment and void (owner only), CSV import."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from ...extensions import db
from ...forms import AdjustForm, ImportForm, MergeCardForm, ReplaceCardForm, VoidForm, form_dict, form_errors
from ...services import cards, imports, operations, programs, reissue
from ...services.errors import DomainError, ValidationError
from ...services.wallet import health as wallet_health
from ...web import render
from . import bp
from .helpers import actor, handle_refusal, new_idempotency_key, run_once

PAGE_SIZE = 50


@bp.get("/customers")
def customers():
    q = (request.args.get("q") or "").strip()[:100]
    program_id = request.args.get("program_id", type=int)
    offset = max(0, request.args.get("offset", 0, type=int))
    act = actor()
    found = cards.search_cards(act, q, program_id, limit=PAGE_SIZE + 1, offset=offset)
    more = len(found) > PAGE_SIZE
    return render("vendor/customers.html", "results", q=q, program_id=program_id, offset=offset,
                  cards=found[:PAGE_SIZE], more=more, programs=programs.list_programs(act), page_size=PAGE_SIZE)


def _card_page(card_number, *, notice=None, errors=None, values=None, status=200):
    act = actor()
    card = cards.get_card(act, card_number)
    before = request.args.get("before", type=int)
    history = cards.recent_transactions(card, limit=51, before_id=before)
    voided = {t.voided_transaction_id for t in history if t.voided_transaction_id}
    return render("vendor/card.html", "history", status=status, card=card, program=card.program,
                  history=history[:50], more=history[50].id if len(history) > 50 else None,
                  voided=voided, notice=notice, errors=errors or {}, values=values or {},
                  key=new_idempotency_key(),
                  earlier=reissue.history(card), health=wallet_health.card_health(card))


@bp.get("/customers/<card_number>")
def card_detail(card_number):
    return _card_page(card_number)  # a number that names no card, whatever its shape: 404 (cards.get_card)


@bp.post("/customers/<card_number>/adjust")
def card_adjust(card_number):
    form = AdjustForm()
    data = form_dict(form, "delta", "reason")
    if not form.validate():
        return _card_page(card_number, errors=form_errors(form, "adjust_"), values=data, status=422)
    outcome = run_once(lambda key: _adjust(card_number, data, key))
    if outcome["kind"] == "success":
        flash(outcome["message"], "success")
        return redirect(url_for("vendor.card_detail", card_number=card_number), 303)
    return _card_page(card_number, notice=outcome, errors={f"adjust_{k}": v for k, v in outcome["fields"].items()},
                      values={"delta": data["delta"], "reason": data["reason"]}, status=outcome["status"])


def _adjust(card_number, data, key):
    card, tx = operations.adjust(actor(), card_number, data, idempotency_key=key)
    return {"message": _("Balance corrected by %(delta)+d. New balance: %(balance)s.", delta=tx.delta,
                         balance=tx.balance_after)}


def _confirm_page(template, card_number, *, status=200, notice=None, errors=None, values=None, **extra):
    card = cards.get_card(actor(), card_number)
    return render(template, status=status, card=card, program=card.program, notice=notice, errors=errors or {},
                  values=values or {}, key=new_idempotency_key(), **extra)


@bp.route("/customers/<card_number>/replace", methods=["GET", "POST"])
def card_replace(card_number):
    """A lost or stolen phone: a new number, link and passes for the card (GET: are you sure?; POST: do it)."""
    if request.method == "GET":
        return _confirm_page("vendor/card_replace.html", card_number)
    form = ReplaceCardForm()
    data = form_dict(form, "reason")
    if not form.validate():
        return _confirm_page("vendor/card_replace.html", card_number, status=422, errors=form_errors(form),
                             values=data)

    def perform(key):
        card, retired = reissue.replace_card(actor(), card_number, data)
        return {"card_number": card.card_number,
                "message": _("Card %(old)s was replaced. Its new number is %(new)s.",
                             old=cards.format_card_number(retired.card_number),
                             new=cards.format_card_number(card.card_number))}

    outcome = run_once(perform)
    if outcome["kind"] == "success":
        flash(outcome["message"], "success")
        return redirect(url_for("vendor.card_detail", card_number=outcome["card_number"]), 303)
    return _confirm_page("vendor/card_replace.html", card_number, status=outcome["status"], notice=outcome,
                         errors=outcome["fields"], values=data)


@bp.route("/customers/<card_number>/merge", methods=["GET", "POST"])
def card_merge(card_number):
    """Merge this card into another card of the same person (GET: choose and confirm; POST: do it)."""
    # GET (choosing the card) changes nothing: its form has no CSRF token; the POST's has.
    form = MergeCardForm(request.args, meta={"csrf": False}) if request.method == "GET" else MergeCardForm()
    data = form_dict(form, "into", "reason")
    act = actor()
    if request.method == "GET":
        card = cards.get_card(act, card_number)
        target, errors = None, {}
        if data["into"] and not form.validate():
            errors = form_errors(form)
        elif data["into"]:
            try:
                target = reissue.merge_target(act, card, data["into"])
            except DomainError as error:
                errors = error.fields or {"into": [error.render_message()]}
        return _confirm_page("vendor/card_merge.html", card_number, status=422 if errors else 200,
                             errors=errors, values=data, target=target,
                             duplicates=reissue.possible_duplicates(card))

    def perform(key):
        card, retired, _txs = reissue.merge_cards(act, card_number, data)
        return {"card_number": card.card_number,
                "message": _("Card %(old)s was merged into this card.",
                             old=cards.format_card_number(retired.card_number))}

    if not form.validate():  # the reason too long, or the number gone from the confirmation form: choose again
        return _confirm_page("vendor/card_merge.html", card_number, status=422, errors=form_errors(form),
                             values=data, target=None, duplicates=reissue.possible_duplicates(
                                 cards.get_card(act, card_number)))
    outcome = run_once(perform)
    if outcome["kind"] == "success":
        flash(outcome["message"], "success")
        return redirect(url_for("vendor.card_detail", card_number=outcome["card_number"]), 303)
    card = cards.get_card(act, card_number)
    return _confirm_page("vendor/card_merge.html", card_number, status=outcome["status"], notice=outcome,
                         errors=outcome["fields"], values=data, target=None,
                         duplicates=reissue.possible_duplicates(card))


@bp.post("/transactions/<int:transaction_id>/void")
def transaction_void(transaction_id):
    tx = operations.get_transaction(actor(), transaction_id)
    card_number = tx.card.card_number
    form = VoidForm()
    data = form_dict(form, "reason")
    if not form.validate():
        return _card_page(card_number, errors=form_errors(form, f"void_{transaction_id}_"), status=422)

    def perform(key):
        operations.void_transaction(actor(), transaction_id, data, idempotency_key=key)
        return {"message": _("Transaction %(id)s was voided.", id=transaction_id)}

    outcome = run_once(perform)
    if outcome["kind"] == "success":
        flash(outcome["message"], "success")
        return redirect(url_for("vendor.card_detail", card_number=card_number), 303)
    return _card_page(card_number, notice=outcome,
                      errors={f"void_{transaction_id}_{k}": v for k, v in outcome["fields"].items()},
                      status=outcome["status"])


@bp.route("/customers/import", methods=["GET", "POST"])
def customers_import():
    act = actor()
    items = programs.list_programs(act)
    if request.method == "GET":
        return render("vendor/import.html", programs=items, report=None, errors={}, text="", program_id=None)
    form = ImportForm()
    program_id = form.program_id.data or 0
    if not form.validate():
        return render("vendor/import.html", status=422, programs=items, report=None, text="",
                      program_id=program_id, errors=form_errors(form))
    confirm = form.confirm.data == "1"
    text = form.csv_text()
    try:
        report = imports.run(act, program_id, text)
    except ValidationError as error:
        notice = handle_refusal(error)
        return render("vendor/import.html", status=422, programs=items, report=None, text=text,
                      program_id=program_id, errors=notice["fields"] or {"file": [notice["message"]]})
    if not confirm:
        db.session.rollback()  # a preview: nothing is kept
        return render("vendor/import.html", programs=items, report=report, errors={}, text=text,
                      program_id=program_id)
    counts = report.counts
    flash(_("%(new)s new cards, %(existing)s already existed, %(invalid)s rows skipped.", **counts), "success")
    return redirect(url_for("vendor.customers", program_id=program_id), 303)

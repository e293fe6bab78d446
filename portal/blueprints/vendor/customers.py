"""Customers: live search, card detail with history, manual adjustment and void (owner only), CSV import."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from ...extensions import db
from ...services import cards, imports, operations, programs
from ...services.errors import ValidationError
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
                  key=new_idempotency_key(), format_number=cards.format_card_number)


@bp.get("/customers/<card_number>")
def card_detail(card_number):
    return _card_page(card_number)  # a number that names no card, whatever its shape: 404 (cards.get_card)


@bp.post("/customers/<card_number>/adjust")
def card_adjust(card_number):
    data = {"delta": request.form.get("delta", ""), "reason": request.form.get("reason", "")}
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


@bp.post("/transactions/<int:transaction_id>/void")
def transaction_void(transaction_id):
    tx = operations.get_transaction(actor(), transaction_id)
    card_number = tx.card.card_number
    data = {"reason": request.form.get("reason", "")}

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
    program_id = request.form.get("program_id", type=int) or 0
    confirm = request.form.get("confirm") == "1"
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read()
    else:
        raw = (request.form.get("text") or "").encode()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
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

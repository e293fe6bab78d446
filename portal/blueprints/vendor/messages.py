"""Messages to pass holders (compose, preview, send or schedule, watch the progress) and a program's nudges."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from ...extensions import db
from ...services import messages, programs
from ...services.errors import DomainError
from ...services.i18n import LANGUAGE_NAMES, SUPPORTED
from ...web import is_htmx, render
from . import bp
from .helpers import actor, handle_refusal

FORM_FIELDS = ("program_id", "segment", "days", "card_number", "scheduled_at",
               *(f"text_{lang}" for lang in SUPPORTED))


def _compose(values: dict, *, errors=None, counts=None, notice=None, status=200, block=None):
    act = actor()
    return render("vendor/message_new.html", block, status=status, values=values, errors=errors or {},
                  counts=counts, notice=notice, programs=programs.list_programs(act),
                  languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED])


def _form_values() -> dict:
    return {name: (request.form.get(name) or "").strip() for name in FORM_FIELDS}


@bp.get("/messages")
def messages_list():
    act = actor()
    items = messages.list_messages(act)
    return render("vendor/messages.html", items=items, progress={m.id: messages.progress(m) for m in items},
                  programs=programs.list_programs(act))


@bp.route("/messages/new", methods=["GET", "POST"])
def message_new():
    if request.method == "GET":
        args = request.args
        values = {name: (args.get(name) or "").strip() for name in FORM_FIELDS}
        values["segment"] = values["segment"] or "all"
        return _compose(values)
    values = _form_values()
    preview_only = request.form.get("action") == "preview"
    try:
        if preview_only:
            counts = messages.preview(actor(), values)
            db.session.rollback()  # a preview writes nothing
            return _compose(values, counts=counts, block="preview")
        message = messages.create(actor(), values, send=True)
    except DomainError as error:
        notice = handle_refusal(error)
        errors = notice["fields"] or {"form": [notice["message"]]}
        return _compose(values, errors=errors, notice=notice, status=error.status,
                        block="preview" if preview_only else None)
    if message.status == "scheduled":
        flash(_("The message is scheduled."), "success")
    else:
        flash(_("The message is on its way to %(n)s cards.", n=message.recipients), "success")
    return redirect(url_for("vendor.message_detail", message_id=message.id), 303)


@bp.get("/messages/<int:message_id>")
def message_detail(message_id):
    message = messages.get_message(actor(), message_id)
    return render("vendor/message.html", "progress", message=message, progress=messages.progress(message),
                  languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED])


@bp.route("/programs/<int:program_id>/nudges", methods=["GET", "POST"])
def program_nudges(program_id):
    act = actor()
    program, settings = messages.nudge_settings(act, program_id)
    errors: dict = {}
    status = 200
    if request.method == "POST":
        data = {k: v for k, v in request.form.items() if k != "csrf_token"}
        for kind in messages.NUDGE_KINDS:  # an unticked box is absent from the form: off
            data.setdefault(f"{kind}_on", "off")
        try:
            messages.save_nudges(act, program_id, data)
        except DomainError as error:
            errors = handle_refusal(error)["fields"]
            status = error.status
            settings = {kind: {"on": data.get(f"{kind}_on") == "on",
                               "daily_cap": data.get(f"{kind}_daily_cap", ""), "days": data.get(f"{kind}_days", ""),
                               "texts": {lang: data.get(f"{kind}_text_{lang}", "") for lang in SUPPORTED}}
                        for kind in messages.NUDGE_KINDS}
        else:
            flash(_("Your changes were saved."), "success")
            return redirect(url_for("vendor.program_nudges", program_id=program_id), 303)
    return render("vendor/nudges.html", status=status, program=program, settings=settings, errors=errors,
                  languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED], is_htmx=is_htmx())

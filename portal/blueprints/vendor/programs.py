"""Programs: list, create, edit, pause, logo — with inline validation (the same service rules) and a live preview."""
from __future__ import annotations

import datetime as dt

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from ...extensions import db
from ...forms import (EMPTY_REWARD_ROWS, PROGRAM_TEXT_FIELDS, ActiveForm, LogoForm, ProgramForm, RelevanceForm,
                      all_reward_rows, form_errors, program_data, relevance_data, reward_rows)
from ...services import clock, relevance
from ...services import programs as program_service
from ...services import stats
from ...services.errors import ValidationError
from ...services.programs import RULE_LIMITS
from ...services.wallet import images
from ...web import is_htmx, render
from . import bp
from .helpers import actor, handle_refusal

DEFAULTS = {"type": "stamps", "stamps_required": "10", "cooldown_minutes": "15", "daily_stamp_limit": "5",
            "pin_max_attempts": "5", "pin_lockout_minutes": "15", "require_pin": True, "pending_signups": False,
            "currency": "EUR",
            "points_per_unit": "1.00", "background_color": "#1f4e79", "foreground_color": "#ffffff",
            "label_color": "#cfe3f5", "name": "", "description": "", "reward_text": "", "slug": ""}


def program_values(program) -> dict:
    values = {name: "" if getattr(program, name, None) is None else str(getattr(program, name))
              for name in PROGRAM_TEXT_FIELDS}
    values.update(type=program.type, require_pin=program.require_pin, active=program.active,
                  pending_signups=program.pending_signups)
    values["rewards"] = [{"id": str(r.id), "name": r.name, "points_cost": str(r.points_cost), "active": r.active}
                         for r in program.rewards]
    return values


def submitted_values(program=None) -> dict:
    form = request.form
    values = {name: form.get(name, "") for name in PROGRAM_TEXT_FIELDS}
    values["type"] = program.type if program is not None else form.get("type", "stamps")
    values["require_pin"] = form.get("require_pin") in ("on", "true", "1", "y")
    values["pending_signups"] = form.get("pending_signups") in ("on", "true", "1", "y")
    values["active"] = program.active if program is not None else True
    values["rewards"] = all_reward_rows(form)
    return values


def preview(values: dict, program=None) -> dict:
    """What the card will look like; tolerant of invalid input (the errors are shown next to the fields)."""
    def int_or(value, default, low, high):
        try:
            return max(low, min(high, int(str(value).strip())))
        except (TypeError, ValueError):
            return default

    def colour(name):
        value = str(values.get(name) or "")
        return value if len(value) == 7 and value.startswith("#") and all(
            c in "0123456789abcdefABCDEF" for c in value[1:]) else DEFAULTS[name]

    stamps = int_or(values.get("stamps_required"), 10, 1, 100)
    shown = min(stamps, 20)
    per_row = 5 if shown <= 10 else 10 if shown > 15 else 5
    circles = [{"x": 24 + (i % per_row) * (272 / max(per_row, 1)) + 272 / max(per_row, 1) / 2 - 12,
                "y": 92 + (i // per_row) * 30, "filled": i < min(3, shown)} for i in range(shown)]
    return {"name": values.get("name") or _("Your program"), "type": values.get("type", "stamps"),
            "reward_text": values.get("reward_text") or "", "stamps_required": stamps, "more": stamps - shown,
            "circles": circles, "height": 110 + ((shown - 1) // per_row + 1) * 30 if values.get("type", "stamps")
            == "stamps" else 150,
            "bg": colour("background_color"), "fg": colour("foreground_color"), "label": colour("label_color"),
            "logo_url": url_for("vendor.program_logo", program_id=program.id, v=program.updated_at.timestamp())
            if program is not None and program.logo_png else None}


def _rows_for_form(values) -> list[dict]:
    rows = list(values.get("rewards") or [])
    trailing = 0
    for row in reversed(rows):
        if row["name"] or row["points_cost"]:
            break
        trailing += 1
    rows += [{"id": "", "name": "", "points_cost": "", "active": True}
             for _ in range(max(0, EMPTY_REWARD_ROWS - trailing))]
    return rows


def _form_page(values, errors, program=None, status=200, feedback_only=False):
    # Inline validation (htmx) answers with only the error slots and the preview, swapped out-of-band by id.
    partial = feedback_only and is_htmx()
    template = "vendor/_program_feedback.html" if partial else "vendor/program_form.html"
    return render(template, None if partial else "form", status=status, values=values, errors=errors,
                  program=program, rewards=_rows_for_form(values), card=preview(values, program),
                  limits=RULE_LIMITS, field_names=[n for n in PROGRAM_TEXT_FIELDS if n in request.form],
                  logo_max_side=images.MAX_LOGO_SIDE)


def _with_row_errors(errors: dict) -> dict:
    """'rewards.1.name' (the service's index among filled-in rows) → the form row's position, so the message
    shows next to the row the owner typed in."""
    positions = [row["pos"] for row in reward_rows(request.form)]
    rows: dict = {}
    for key, messages in errors.items():
        parts = key.split(".")
        if parts[0] == "rewards" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(positions):
            rows.setdefault(positions[int(parts[1])], {})[parts[2]] = messages
    return {**errors, "_rows": rows}


@bp.get("/programs")
def programs():
    items = program_service.list_programs(actor())
    figures = stats.program_figures([p.id for p in items])
    return render("vendor/programs.html", programs=items, figures=figures)


@bp.route("/programs/new", methods=["GET", "POST"])
def program_new():
    if request.method == "GET":
        values = dict(DEFAULTS, type=request.args.get("type") if request.args.get("type") in ("stamps", "points")
                      else "stamps", rewards=[])
        return _form_page(values, {})
    values = submitted_values()
    form = ProgramForm()
    if not form.validate():
        return _form_page(values, _with_row_errors(form_errors(form)), status=422)
    try:
        program = program_service.create_program(actor(), program_data(request.form, creating=True))
    except ValidationError as error:
        notice = handle_refusal(error)
        errors = notice["fields"] or {"form": [notice["message"]]}
        return _form_page(values, _with_row_errors(errors), status=422)
    flash(_("The program “%(name)s” was created.", name=program.name), "success")
    return redirect(url_for("vendor.program_edit", program_id=program.id), 303)


@bp.route("/programs/<int:program_id>/edit", methods=["GET", "POST"])
def program_edit(program_id):
    program = program_service.get_program(actor(), program_id, rewards=True)  # the form shows the catalog
    if request.method == "GET":
        return _form_page(program_values(program), {}, program)
    values = submitted_values(program)
    form = ProgramForm()
    if not form.validate():
        return _form_page(values, _with_row_errors(form_errors(form)), program, status=422)
    data = program_data(request.form, creating=False, program_type=program.type)
    try:
        program_service.update_program(actor(), program_id, data)
    except ValidationError as error:
        notice = handle_refusal(error)
        program = program_service.get_program(actor(), program_id)
        errors = notice["fields"] or {"form": [notice["message"]]}
        return _form_page(values, _with_row_errors(errors), program, status=422)
    flash(_("Your changes were saved."), "success")
    return redirect(url_for("vendor.program_edit", program_id=program_id), 303)


@bp.post("/programs/validate")
@bp.post("/programs/<int:program_id>/validate")
def program_validate(program_id=None):
    """Inline validation: run the real service on the submitted form, show its field errors and the preview, and
    roll everything back."""
    program = program_service.get_program(actor(), program_id) if program_id else None
    values = submitted_values(program)
    form = ProgramForm()
    errors: dict = {}
    if not form.validate():
        errors = form_errors(form)  # the form's own refusals first, as the POST shows them
    else:
        try:
            if program is None:
                program_service.create_program(actor(), program_data(request.form, creating=True))
            else:
                data = program_data(request.form, creating=False, program_type=program.type)
                program_service.update_program(actor(), program.id, data, validate_only=True)
        except ValidationError as error:
            errors = handle_refusal(error)["fields"]
    db.session.rollback()  # validation only: never keep anything
    if program is not None:
        program = program_service.get_program(actor(), program.id)
    # htmx: only the messages and the preview change (out-of-band), never the inputs being typed in.
    return _form_page(values, _with_row_errors(errors), program, feedback_only=True)


@bp.post("/programs/<int:program_id>/active")
def program_active(program_id):
    form = ActiveForm()
    if not form.validate():
        abort(400)
    want = form.wanted
    try:
        program = program_service.update_program(actor(), program_id, {"active": want})
    except ValidationError as error:
        flash(handle_refusal(error)["message"], "error")
        return redirect(url_for("vendor.programs"), 303)
    if want:
        flash(_("“%(name)s” is active again.", name=program.name), "success")
    else:
        flash(_("“%(name)s” is paused: no stamps, points or enrolments until you resume it.", name=program.name),
              "success")
    return redirect(form.back.data == "edit" and url_for("vendor.program_edit", program_id=program_id)
                    or url_for("vendor.programs"), 303)


@bp.post("/programs/<int:program_id>/logo")
def program_logo_upload(program_id):
    program_service.get_program(actor(), program_id)  # 404 before anything else
    form = LogoForm()
    if not form.validate():
        abort(400)
    remove = form.remove.data == "1"
    png = None
    if not remove:
        png = form.logo.data.read() if form.logo.data is not None else b""
        if not png:
            flash(_("Choose a PNG file first."), "error")
            return redirect(url_for("vendor.program_edit", program_id=program_id), 303)
    try:
        program_service.set_logo(actor(), program_id, png)
    except ValidationError as error:
        notice = handle_refusal(error)
        for messages in notice["fields"].values():
            for message in messages:
                flash(message, "error")
        if not notice["fields"]:
            flash(notice["message"], "error")
        return redirect(url_for("vendor.program_edit", program_id=program_id), 303)
    flash(_("The logo was removed.") if remove else _("The logo was saved."), "success")
    return redirect(url_for("vendor.program_edit", program_id=program_id), 303)


@bp.get("/programs/<int:program_id>/logo.png")
def program_logo(program_id):
    program = program_service.get_program(actor(), program_id)
    logo = images.safe_logo(program.logo_png)
    if logo is None:
        abort(404)
    response = Response(logo, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response



# --- where and when the pass is relevant (services/relevance.py) ------------------------------------------------

def _relevance_form(program, data: dict | None = None) -> RelevanceForm:
    """The form filled from the saved settings (GET) or from what was posted."""
    if data is not None:
        return RelevanceForm(formdata=request.form)
    saved = relevance.to_dict(program)
    tz = clock.zone(program.vendor.timezone)

    def local(iso):
        return dt.datetime.fromisoformat(iso).astimezone(tz).replace(tzinfo=None) if iso else None

    rows = saved["locations"] + [{"latitude": "", "longitude": "", "relevant_text": ""}] * (
        relevance.MAX_LOCATIONS - len(saved["locations"]))
    return RelevanceForm(formdata=None, data={"locations": rows, "relevant_from": local(saved["relevant_from"]),
                                              "relevant_until": local(saved["relevant_until"])})


@bp.route("/programs/<int:program_id>/relevance", methods=["GET", "POST"])
def program_relevance(program_id):
    program = program_service.get_program(actor(), program_id)
    if request.method == "GET":
        return render("vendor/program_relevance.html", program=program, form=_relevance_form(program), errors={},
                      max_locations=relevance.MAX_LOCATIONS)
    data, rows = relevance_data(request.form)
    try:
        relevance.update(actor(), program_id, data)
    except ValidationError as error:
        notice = handle_refusal(error)
        errors: dict = {}
        for key, messages in (notice["fields"] or {"form": [notice["message"]]}).items():
            parts = key.split(".")
            if parts[0] == "locations" and len(parts) == 3 and int(parts[1]) < len(rows):
                errors[f"locations-{rows[int(parts[1])]}-{parts[2]}"] = messages
            else:
                errors[key] = messages
        program = program_service.get_program(actor(), program_id)
        return render("vendor/program_relevance.html", status=422, program=program,
                      form=_relevance_form(program, data), errors=errors, max_locations=relevance.MAX_LOCATIONS)
    flash(_("Where and when the pass shows up was saved; passes in wallets are being updated."), "success")
    return redirect(url_for("vendor.program_relevance", program_id=program_id), 303)

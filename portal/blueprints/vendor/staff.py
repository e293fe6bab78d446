"""Staff: PINs per program (add → shown once, reset, unlock, remove) and staff user accounts for the tablet."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from ...forms import ActiveForm, PinForm, StaffUserForm, form_dict, form_errors
from ...services import clock, pins, programs, team
from ...services.errors import ValidationError
from ...web import render
from . import bp
from .auth import stay_logged_in
from .helpers import actor, handle_refusal


def _page(status=200, **extra):
    act = actor()
    items = programs.list_programs(act)
    by_program = {p.id: [] for p in items}
    for row in pins.list_pins(act):
        by_program.setdefault(row.program_id, []).append(row)
    locks = {p.id: pins.lockouts(act, p.id) for p in items}
    context = {"programs": items, "pins": by_program, "lockouts": locks, "users": team.list_staff_users(act),
               "errors": {}, "values": {}, "now": clock.now()}
    context.update(extra)
    response = render("vendor/staff.html", "staff", status=status, **context)
    if "new_pin" in extra:  # the plaintext PIN is shown once: never cache it
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/staff")
def staff():
    return _page()


@bp.post("/staff/pins")
def staff_pin_create():
    form = PinForm()
    program_id = form.program_id.data or 0
    data = {"staff_name": form.staff_name.data or ""}
    if not form.validate():
        return _page(422, errors=form_errors(form), values={"staff_name": data["staff_name"], "program_id": program_id})
    if form.pin.data:
        data["pin"] = form.pin.data
    try:
        row, plaintext = pins.create_pin(actor(), program_id, data)
    except ValidationError as error:
        notice = handle_refusal(error)
        return _page(422, errors=notice["fields"] or {"program_id": [notice["message"]]},
                     values={"staff_name": data["staff_name"], "program_id": program_id})
    return _page(201, new_pin={"name": row.staff_name, "pin": plaintext, "program": row.program.name})


@bp.post("/staff/pins/<int:pin_id>/reset")
def staff_pin_reset(pin_id):
    try:
        row, plaintext = pins.reset_pin(actor(), pin_id, {})
    except ValidationError as error:
        flash(handle_refusal(error)["message"], "error")
        return redirect(url_for("vendor.staff"), 303)
    return _page(new_pin={"name": row.staff_name, "pin": plaintext, "program": row.program.name})


@bp.post("/staff/pins/<int:pin_id>/unlock")
def staff_pin_unlock(pin_id):
    row = pins.unlock(actor(), pin_id)
    flash(_("The PIN pad of “%(program)s” is unlocked.", program=row.program.name), "success")
    return redirect(url_for("vendor.staff"), 303)


@bp.route("/staff/pins/<int:pin_id>/delete", methods=["GET", "POST"])
def staff_pin_delete(pin_id):
    row = pins.get_pin(actor(), pin_id)
    if request.method == "GET":  # the confirmation step (the page's "Remove" button leads here)
        return render("confirm.html", title=_("Remove the PIN of %(name)s?", name=row.staff_name),
                      lines=[_("%(name)s can no longer use this PIN at the till of “%(program)s”. Their past "
                               "stamps stay in the history.", name=row.staff_name, program=row.program.name)],
                      action=url_for("vendor.staff_pin_delete", pin_id=pin_id), hidden={},
                      confirm_label=_("Yes, remove the PIN"), cancel=url_for("vendor.staff"))
    name = row.staff_name
    pins.delete_pin(actor(), pin_id)
    flash(_("The PIN of %(name)s was removed.", name=name), "success")
    return redirect(url_for("vendor.staff"), 303)


@bp.post("/staff/users")
def staff_user_create():
    form = StaffUserForm()
    data = form_dict(form, "email", "name", "password")
    if not form.validate():
        return _page(422, errors=form_errors(form, "user_"),
                     values={"user_email": data["email"], "user_name": data["name"]})
    try:
        team.create_staff_user(actor(), data)
    except ValidationError as error:
        notice = handle_refusal(error)
        errors = {f"user_{k}": v for k, v in notice["fields"].items()} or {"user_email": [notice["message"]]}
        return _page(422, errors=errors, values={"user_email": data["email"], "user_name": data["name"]})
    # The same answer whether or not the address already was another shop's login (docs/security.md).
    flash(_("If %(email)s had no login with us yet, it can now log in with the password you chose and use the "
            "tablet page. An address has only one login; we do not say whether it already had one.",
            email=data["email"].strip().lower()), "success")
    return redirect(url_for("vendor.staff"), 303)


@bp.post("/staff/users/<int:user_id>/active")
def staff_user_active(user_id):
    form = ActiveForm()
    if not form.validate():
        abort(400)
    want = form.wanted
    user = team.set_staff_user_active(actor(), user_id, want)
    if want:
        flash(_("%(email)s can log in again.", email=user.email), "success")
    else:
        flash(_("%(email)s can no longer log in.", email=user.email), "success")
    return redirect(url_for("vendor.staff"), 303)


@bp.post("/staff/logout-everywhere")
def staff_logout_everywhere():
    team.log_out_everywhere(actor())
    stay_logged_in()
    flash(_("Every session of your shop's logins was ended: staff tablets and your other devices must log in "
            "again. You stay logged in here."), "success")
    return redirect(url_for("vendor.staff"), 303)

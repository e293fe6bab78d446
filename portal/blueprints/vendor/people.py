"""The Staff view (issue 17): per person, actions per day, refusals and integrity signals; marking a signal
reviewed; the dashboard's badge; the shop's opening hours. Rules in ``services/staff_signals.py``."""
from __future__ import annotations

import datetime as dt

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ...services import staff_signals
from ...services.errors import DomainError, ValidationError
from ...web import render
from . import bp
from .helpers import actor, handle_refusal

WEEKDAYS = (0, 1, 2, 3, 4, 5, 6)


def _weeks(scope) -> dict:
    return {"week": scope.week, "previous": staff_signals.week_label(scope.monday - dt.timedelta(weeks=1)),
            "next": staff_signals.week_label(scope.monday + dt.timedelta(weeks=1)),
            "monday": scope.monday, "sunday": scope.monday + dt.timedelta(days=6)}


@bp.get("/staff/people")
def staff_people():
    scope, rows = staff_signals.people(actor(), request.args.get("week") or None)
    return render("vendor/staff_people.html", "people", people=rows, weeks=_weeks(scope),
                  has_hours=bool(staff_signals.opening_hours(scope.vendor.id)))


@bp.get("/staff/person")
def staff_person():
    data = staff_signals.person(actor(), request.args.get("name", ""), request.args.get("week") or None)
    return render("vendor/staff_person.html", "person", data=data, weeks=_weeks(data["scope"]),
                  kind_labels=staff_signals.KIND_LABELS)


@bp.post("/staff/signals/review")
def staff_signal_review():
    name = request.form.get("name", "")
    week = request.form.get("week", "")
    back = url_for("vendor.staff_person", name=name, week=week) if name else url_for("vendor.staff_people")
    try:
        staff_signals.review(actor(), {"key": request.form.get("key", ""), "note": request.form.get("note", "")},
                             current_user.display_name)
    except DomainError as error:
        notice = handle_refusal(error)
        message = " ".join(m for ms in notice["fields"].values() for m in ms) or notice["message"]
        flash(message, "error")
        return redirect(back, 303)
    flash(_("The signal is marked reviewed."), "success")
    return redirect(back, 303)


@bp.get("/staff/badge")
def staff_badge():
    """The dashboard's badge alone (the dashboard fetches it after loading): always the block, never a page."""
    from flask import make_response
    from jinja2_fragments.flask import render_block

    return make_response(render_block("vendor/dashboard.html", "staff_badge",
                                      unreviewed=staff_signals.unreviewed_count(actor())))


@bp.route("/settings", methods=["GET", "POST"])
def shop_settings():
    act = actor()
    errors, values = {}, {}
    status = 200
    if request.method == "POST":
        values = {k: request.form.get(k, "") for d in WEEKDAYS for k in (f"opens_{d}", f"closes_{d}")}
        try:
            staff_signals.set_opening_hours(act, values)
        except ValidationError as error:
            notice = handle_refusal(error)
            errors, status = notice["fields"], 422
        else:
            flash(_("Opening hours saved."), "success")
            return redirect(url_for("vendor.shop_settings"), 303)
    if not values:
        hours = staff_signals.opening_hours(act.vendor_id)
        for day, (opens, closes) in hours.items():
            values[f"opens_{day}"] = staff_signals.format_minute(opens)
            values[f"closes_{day}"] = staff_signals.format_minute(closes)
    return render("vendor/settings.html", status=status, errors=errors, values=values, weekdays=WEEKDAYS)


@bp.app_template_filter("weekday_date")
def weekday_date(value, fmt: str = "EEE d MMM") -> str:
    """A date (or an ISO date string) with its weekday, in the current language: "Tue 1 Dec"."""
    from babel import dates

    from ...services.i18n import current_locale

    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return dates.format_date(value, fmt, locale=current_locale())


@bp.app_template_global("weekday_name")
def weekday_name(index: int) -> str:
    """0 = Monday, in the current language."""
    from babel import dates

    from ...services.i18n import current_locale

    return dates.get_day_names("wide", locale=current_locale())[index]

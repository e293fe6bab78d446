"""Flask-WTF forms for the pages, and the translation of posted forms into the dicts the services validate.

Business rules live in the services (``portal.services``): a form here only declares fields and labels, and the
``*_data`` helpers turn ``request.form`` into the same dict shape the JSON API sends, so both edges refuse the same
input with the same field messages.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import DateTimeLocalField, EmailField, FieldList, Form, FormField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional


REQUIRED = _l("This field is required.")


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(REQUIRED),
                                                Length(max=254, message=_l("At most %(n)s characters.", n=254))],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED),
                                                         Length(max=200, message=_l("At most %(n)s characters.",
                                                                                    n=200))],
                             render_kw={"autocomplete": "current-password"})


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(REQUIRED)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("New password"), validators=[DataRequired(REQUIRED)],
                                 render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Repeat the new password"),
                            validators=[DataRequired(REQUIRED), EqualTo("new_password", _l("The passwords differ."))],
                            render_kw={"autocomplete": "new-password"})


PROGRAM_TEXT_FIELDS = ("name", "description", "slug", "reward_text", "points_per_unit", "currency",
                       "stamps_required", "cooldown_minutes", "daily_stamp_limit", "pin_max_attempts",
                       "pin_lockout_minutes", "background_color", "foreground_color", "label_color")
EMPTY_REWARD_ROWS = 2


def program_data(form: MultiDict, *, creating: bool, program_type: str | None = None) -> dict:
    """A program form → the dict ``services.programs.create_program/update_program`` take."""
    data: dict = {}
    for name in PROGRAM_TEXT_FIELDS:
        if name in form:
            data[name] = form.get(name, "").strip()
    if creating:
        data["type"] = form.get("type", "")
    if not data.get("slug"):
        data.pop("slug", None)
    # The checkbox is always on the form: absent means off.
    data["require_pin"] = form.get("require_pin") in ("on", "true", "1", "y")
    data["pending_signups"] = form.get("pending_signups") in ("on", "true", "1", "y")
    if (form.get("type") if creating else program_type) == "points":
        data["rewards"] = reward_rows(form)
    return data


def all_reward_rows(form: MultiDict) -> list[dict]:
    """Every catalog row of the form, filled in or not, in order (``pos`` is the row's position)."""
    ids, names = form.getlist("reward_id"), form.getlist("reward_name")
    costs, active = form.getlist("reward_cost"), set(form.getlist("reward_active"))
    rows = []
    for pos, name in enumerate(names):
        rid = ids[pos] if pos < len(ids) else ""
        rows.append({"pos": pos, "id": rid, "name": name.strip(),
                     "points_cost": (costs[pos] if pos < len(costs) else "").strip(),
                     # an existing reward: its "offered" box decides; new rows start offered
                     "active": (rid in active) if rid else True})
    return rows


def reward_rows(form: MultiDict) -> list[dict]:
    """The catalog rows that were filled in (empty rows are ignored), as the service takes them."""
    rows = []
    for row in all_reward_rows(form):
        if not row["name"] and not row["points_cost"]:
            continue
        item = {"name": row["name"], "points_cost": row["points_cost"], "active": row["active"], "pos": row["pos"]}
        if row["id"]:
            item["id"] = row["id"]
        rows.append(item)
    return rows


class LocationRow(Form):
    """One shop location of the relevance settings (no CSRF of its own: part of ``RelevanceForm``)."""

    latitude = StringField(_l("Latitude"), render_kw={"inputmode": "decimal", "autocomplete": "off"})
    longitude = StringField(_l("Longitude"), render_kw={"inputmode": "decimal", "autocomplete": "off"})
    relevant_text = StringField(_l("Text on the lock screen (optional)"), render_kw={"maxlength": 120})


class RelevanceForm(FlaskForm):
    """Where and when the program's pass is relevant (``services.relevance`` validates; this form only declares
    the fields). Ten rows: Apple's limit of ten locations."""

    locations = FieldList(FormField(LocationRow), min_entries=10, max_entries=10)
    relevant_from = DateTimeLocalField(_l("Offer starts"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    relevant_until = DateTimeLocalField(_l("Offer ends"), format="%Y-%m-%dT%H:%M", validators=[Optional()])


def relevance_data(form: MultiDict) -> tuple[dict, list[int]]:
    """The posted relevance form → the dict ``services.relevance.update`` takes, and the form row of each location
    sent (empty rows are left out), so a field error can be shown on the row the owner typed in."""
    locations, rows = [], []
    for i in range(10):
        values = {name: (form.get(f"locations-{i}-{name}") or "").strip()
                  for name in ("latitude", "longitude", "relevant_text")}
        if any(values.values()):
            locations.append(values)
            rows.append(i)
    return ({"locations": locations, "relevant_from": form.get("relevant_from") or None,
             "relevant_until": form.get("relevant_until") or None}, rows)

"""Flask-WTF forms for the pages, and the translation of posted forms into the dicts the services validate.

Business rules live in the services (``portal.services``): a form here only declares fields and labels, and the
``*_data`` helpers turn ``request.form`` into the same dict shape the JSON API sends, so both edges refuse the same
input with the same field messages.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import MultiDict
from wtforms import (DateTimeLocalField, EmailField, FieldList, Form, FormField, HiddenField, IntegerField,
                     PasswordField, StringField, TextAreaField)
from wtforms.validators import DataRequired, EqualTo, Length, Optional


REQUIRED = _l("This field is required.")


def strip(value):
    return value.strip() if isinstance(value, str) else value


def at_most(n: int) -> Length:
    return Length(max=n, message=_l("At most %(n)s characters.", n=n))


def form_errors(form: FlaskForm, prefix: str = "") -> dict[str, list[str]]:
    """The form's field errors as the pages show them (``macros/forms.html``: ``errors_for``), by field name
    (with ``prefix`` where a page has several forms). The CSRF token is checked for every form before the view
    (``CSRFProtect``), so it has no field to show."""
    return {prefix + name: [str(m) for m in messages] for name, messages in form.errors.items()
            if name != "csrf_token"}


def form_dict(form: FlaskForm, *names: str) -> dict:
    """The fields a service takes, as the plain dict it validates (``services/validation.py``)."""
    return {name: form[name].data for name in (names or [f.name for f in form if f.name != "csrf_token"])}


class ActiveForm(FlaskForm):
    """The pause/resume, suspend/reactivate and disable/enable buttons: one hidden ``active`` of "1" or "0"."""
    active = HiddenField(validators=[Optional()])
    back = HiddenField(validators=[Optional()])

    @property
    def wanted(self) -> bool:
        return self.active.data == "1"


class LogoForm(FlaskForm):
    """A program's logo: a PNG upload, or ``remove`` = "1" (the service checks and re-encodes the image)."""
    logo = FileField()  # the template labels it (with the size limits)
    remove = HiddenField(validators=[Optional()])


class VendorForm(FlaskForm):
    """The operator's "New vendor" form."""
    name = StringField(_l("Shop name"), validators=[DataRequired(REQUIRED), at_most(120)], filters=[strip])
    owner_email = EmailField(_l("Owner's email"), validators=[DataRequired(REQUIRED), at_most(254)],
                             filters=[strip])
    owner_password = PasswordField(_l("Owner's first password"), validators=[DataRequired(REQUIRED)])
    timezone = StringField(_l("Time zone"), validators=[Optional(), at_most(64)], filters=[strip])
    locale = StringField(_l("Language"), validators=[Optional(), at_most(8)], filters=[strip])


class LedgerCheckForm(FlaskForm):
    vendor_id = IntegerField(_l("Vendor"), validators=[Optional()])


class PinForm(FlaskForm):
    """Add a staff PIN (an empty PIN: the service draws a random one)."""
    program_id = IntegerField(_l("Program"), validators=[DataRequired(REQUIRED)])
    staff_name = StringField(_l("Staff member's name"), validators=[DataRequired(REQUIRED), at_most(120)])
    pin = StringField(_l("PIN (optional)"), validators=[Optional(), at_most(8)], filters=[strip])


class StaffUserForm(FlaskForm):
    """A tablet account (the page shows its errors as ``user_*``, beside the PIN form's)."""
    name = StringField(_l("Name"), validators=[Optional(), at_most(120)])
    email = EmailField(_l("Email"), validators=[DataRequired(REQUIRED), at_most(254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED)])


class AdjustForm(FlaskForm):
    """The owner's balance correction (the service checks the number and the balance)."""
    idempotency_key = HiddenField(validators=[Optional()])
    delta = StringField(_l("Change (for example 2 or -1)"), validators=[DataRequired(REQUIRED), at_most(12)])
    reason = StringField(_l("Reason"), validators=[DataRequired(REQUIRED), at_most(500)])


class VoidForm(FlaskForm):
    idempotency_key = HiddenField(validators=[Optional()])
    reason = StringField(_l("Reason"), validators=[DataRequired(REQUIRED), at_most(500)])


class ReplaceCardForm(FlaskForm):
    idempotency_key = HiddenField(validators=[Optional()])
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), at_most(500)])


class MergeCardForm(FlaskForm):
    """Both steps of a merge: GET (choose the card that carries on, no CSRF: it changes nothing) and POST."""
    idempotency_key = HiddenField(validators=[Optional()])
    into = StringField(_l("Number of the card that carries on"), validators=[DataRequired(REQUIRED), at_most(40)],
                       filters=[strip])
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), at_most(500)])


class ImportForm(FlaskForm):
    """A CSV import: the file (preview) or, on confirmation, the previewed text sent back."""
    program_id = IntegerField(_l("Program"), validators=[DataRequired(REQUIRED)])
    file = FileField(_l("CSV file"))
    text = TextAreaField(_l("CSV content"), validators=[Optional()])
    confirm = HiddenField(validators=[Optional()])

    def csv_text(self) -> str:
        """The uploaded file, else the confirmed text, decoded (UTF-8 with or without BOM, else Latin-1)."""
        upload = self.file.data
        raw = upload.read() if upload is not None and getattr(upload, "filename", "") else (self.text.data or "").encode()
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


class TabletActionForm(FlaskForm):
    """A tablet action on a card: ``action`` is stamp, redeem, points, reward-<id> or phone-link."""
    idempotency_key = HiddenField(validators=[Optional()])
    action = HiddenField(validators=[Optional()])
    staff_pin = PasswordField(_l("Your PIN"), validators=[Optional(), at_most(20)])
    amount = StringField(validators=[Optional(), at_most(20)], filters=[strip])


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


class ProgramForm(FlaskForm):
    """A program's form (create, edit, inline validation). It declares the text fields' lengths; the numbers,
    colours and the reward catalog's repeated rows (``reward_id``/``reward_name``/``reward_cost``/``reward_active``)
    are read into the service's dict by ``program_data``, and ``services.programs`` checks them (the same rules
    and messages as the API)."""
    type = StringField(validators=[Optional(), at_most(10)])
    name = StringField(_l("Name"), validators=[Optional(), at_most(120)])
    description = TextAreaField(_l("Description"), validators=[Optional(), at_most(1000)])
    slug = StringField(validators=[Optional(), at_most(80)])
    reward_text = StringField(_l("Reward"), validators=[Optional(), at_most(200)])


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

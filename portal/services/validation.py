"""Small, strict input coercion shared by the JSON API and the HTML forms.

Services take plain dicts (JSON bodies or form data) and turn them into typed values here, so both edges reject
the same input with the same field messages.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l

from .errors import ValidationError

_MISSING = object()
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
# NUL, and lone UTF-16 surrogates (valid in JSON as "\ud800", but not encodable: the database and the ledger hash fail)
FORBIDDEN_CHARS_RE = re.compile("[\x00\ud800-\udfff]")
MAX_INT = 2**31 - 1


class Fields:
    """Collects per-field errors; ``done()`` raises one ValidationError listing all of them."""

    def __init__(self, data: Any):
        if data is None:
            data = {}
        if not hasattr(data, "get"):
            raise ValidationError(_l("The request body must be a JSON object."))
        self.data = data
        self.errors: dict[str, list] = {}

    def has(self, name: str) -> bool:
        value = self.data.get(name, _MISSING)
        return value is not _MISSING and value is not None and value != ""

    def error(self, name: str, message) -> None:
        self.errors.setdefault(name, []).append(message)

    def raw(self, name: str, default=None):
        value = self.data.get(name, _MISSING)
        return default if value is _MISSING or value is None else value

    def string(self, name: str, *, required=False, max_length=200, default="", strip=True) -> str | None:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.error(name, _l("This field is required."))
            return default
        if not isinstance(value, str):
            self.error(name, _l("Must be text."))
            return default
        value = value.strip() if strip else value
        if FORBIDDEN_CHARS_RE.search(value):
            self.error(name, _l("Contains characters that are not allowed."))
            return default
        if len(value) > max_length:
            self.error(name, _l("At most %(n)s characters.", n=max_length))
            return default
        return value

    def integer(self, name: str, *, required=False, minimum=0, maximum=MAX_INT, default=None) -> int | None:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            if required:
                self.error(name, _l("This field is required."))
            return default
        if isinstance(value, bool):
            self.error(name, _l("Must be a whole number."))
            return default
        if isinstance(value, str):
            value = value.strip()
            if not re.fullmatch(r"[+-]?[0-9]{1,12}", value):
                self.error(name, _l("Must be a whole number."))
                return default
            value = int(value)
        elif isinstance(value, float):
            if not value.is_integer():
                self.error(name, _l("Must be a whole number."))
                return default
            value = int(value)
        elif not isinstance(value, int):
            self.error(name, _l("Must be a whole number."))
            return default
        if value < minimum or value > maximum:
            self.error(name, _l("Must be between %(min)s and %(max)s.", min=minimum, max=maximum))
            return default
        return value

    def decimal(self, name: str, *, required=False, minimum=Decimal("0"), maximum=Decimal("1000000"),
                places=2, default=None) -> Decimal | None:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            if required:
                self.error(name, _l("This field is required."))
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            self.error(name, _l("Must be an amount like 12.50."))
            return default
        text = str(value).strip().replace(",", ".") if isinstance(value, str) else str(value)
        if len(text) > 20:
            self.error(name, _l("Must be an amount like 12.50."))
            return default
        try:
            number = Decimal(text)
        except InvalidOperation:
            self.error(name, _l("Must be an amount like 12.50."))
            return default
        if not number.is_finite() or number.as_tuple().exponent < -places:
            self.error(name, _l("Must be an amount like 12.50."))
            return default
        if number < minimum or number > maximum:
            self.error(name, _l("Must be between %(min)s and %(max)s.", min=minimum, max=maximum))
            return default
        return number

    def boolean(self, name: str, *, default=False) -> bool:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "y"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", "n"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        self.error(name, _l("Must be true or false."))
        return default

    def choice(self, name: str, choices, *, required=False, default=None):
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            if required:
                self.error(name, _l("This field is required."))
            return default
        if value not in choices:
            self.error(name, _l("Must be one of: %(choices)s.", choices=", ".join(choices)))
            return default
        return value

    def email(self, name: str, *, required=False) -> str | None:
        value = self.string(name, required=required, max_length=254, default=None)
        if value is None:
            return None
        value = value.lower()
        if not EMAIL_RE.match(value):
            self.error(name, _l("Enter a valid email address."))
            return None
        return value

    def phone(self, name: str, *, required=False) -> str | None:
        value = self.string(name, required=required, max_length=32, default=None)
        if value is None:
            return None
        normalised = normalise_phone(value)
        if normalised is None:
            self.error(name, _l("Enter a valid phone number."))
        return normalised

    def color(self, name: str, *, default=None) -> str | None:
        value = self.string(name, max_length=7, default=None)
        if value is None:
            return default
        if not COLOR_RE.match(value):
            self.error(name, _l("Use a colour like #1f4e79."))
            return default
        return value.lower()

    def done(self) -> None:
        if self.errors:
            raise ValidationError(fields=self.errors)


def normalise_phone(value: str) -> str | None:
    """Digits with an optional leading +; Luxembourg numbers without a country code get +352."""
    cleaned = re.sub(r"[\s().\-/]", "", value)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not re.fullmatch(r"\+?[0-9]{6,15}", cleaned):
        return None
    if not cleaned.startswith("+"):
        cleaned = "+352" + cleaned
    return cleaned


def slugify(text: str, max_length: int = 60) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].strip("-") or "program"

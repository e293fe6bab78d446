"""Jinja filters and globals that format numbers, money, dates and times for the current language (Babel/CLDR)
and the vendor's timezone.

Register once with ``init_i18n_filters(app)`` (``create_app``). In templates::

    {{ program.points_per_unit|format_money(program.currency) }}   → 1,00 €   (fr, de, lb)   €1.00 (en)
    {{ tx.created_at|format_datetime_local }}                    → 24.11.26, 14:35 (de, Europe/Luxembourg)
    {{ tx.created_at|format_datetime_local("medium") }}
    {{ card.created_at|format_date_local }}   {{ until|format_time_local }}
    {{ until|format_moment }}                 → "14:35" today, else date and time (as the API refusals say it)
    {{ 12345|format_decimal }}                → 12 345 (fr) · 12.345 (de, lb) · 12,345 (en)

The timezone is, in this order: the ``tz`` argument, ``g.timezone``, ``g.vendor.timezone``, the
``BABEL_DEFAULT_TIMEZONE`` setting if it is not UTC, else Europe/Luxembourg. The language is Flask-Babel's
(``services.i18n.select_locale``), so ``lu`` has already become ``lb``. Luxembourgish has full CLDR data in Babel
(≥ 2.9): months, weekdays, date/time patterns, decimal and grouping signs.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from babel import dates, numbers
from flask import Flask, current_app, g, has_app_context

DEFAULT_TIMEZONE = "Europe/Luxembourg"


def _locale() -> str:
    from .services.i18n import BABEL_NAMES, current_locale

    code = current_locale()
    return BABEL_NAMES.get(code, code)


def timezone_name(tz: str | None = None) -> str:
    """The IANA name of the timezone to show times in (see the module docstring)."""
    if tz:
        return tz
    if has_app_context():
        explicit = getattr(g, "timezone", None)
        if explicit:
            return explicit
        vendor = getattr(g, "vendor", None)
        if vendor is not None and getattr(vendor, "timezone", None):
            return vendor.timezone
        configured = current_app.config.get("BABEL_DEFAULT_TIMEZONE")
        if configured and configured != "UTC":
            return configured
    return DEFAULT_TIMEZONE


def _zone(tz: str | None):
    from .services.clock import zone

    return zone(timezone_name(tz))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)  # stored as UTC


def format_datetime_local(value, fmt: str = "short", tz: str | None = None) -> str:
    """A date and time in the vendor's timezone and the current language ("short", "medium", "long" or a pattern)."""
    if value is None or value == "":
        return ""
    return dates.format_datetime(_aware(value), fmt, tzinfo=_zone(tz), locale=_locale())


def format_date_local(value, fmt: str = "medium", tz: str | None = None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        value = _aware(value).astimezone(_zone(tz)).date()
    return dates.format_date(value, fmt, locale=_locale())


def format_time_local(value, fmt: str = "short", tz: str | None = None) -> str:
    if value is None or value == "":
        return ""
    return dates.format_time(_aware(value), fmt, tzinfo=_zone(tz), locale=_locale())


def format_moment(value, tz: str | None = None) -> str:
    """'14:35' when the moment is today in the vendor's timezone, else a short date and time — the wording of the
    refusals ("next stamp possible at …")."""
    if value is None or value == "":
        return ""
    from .services.clock import now

    zone = _zone(tz)
    value = _aware(value)
    if value.astimezone(zone).date() == now().astimezone(zone).date():
        return dates.format_time(value, "short", tzinfo=zone, locale=_locale())
    return dates.format_datetime(value, "short", tzinfo=zone, locale=_locale())


def format_timedelta_local(value, threshold: float = 0.85, add_direction: bool = False) -> str:
    """"15 minutes" / "15 Minuten" / "15 Minutten"; ``value`` in seconds or a timedelta."""
    if value is None or value == "":
        return ""
    if not isinstance(value, dt.timedelta):
        value = dt.timedelta(seconds=float(value))
    return dates.format_timedelta(value, threshold=threshold, add_direction=add_direction, locale=_locale())


def _decimal(value):
    if isinstance(value, (int, Decimal)):
        return value
    try:
        return Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None


def format_money(value, currency: str = "EUR") -> str:
    """12.5 → "12,50 €" (fr, de, lb) or "€12.50" (en). Money is Decimal; strings like "12.50" are accepted."""
    if value is None or value == "":
        return ""
    number = _decimal(value)
    if number is None:
        return str(value)
    return numbers.format_currency(number, (currency or "EUR").upper(), locale=_locale())


def format_decimal(value, fmt: str | None = None) -> str:
    """A number with the language's grouping and decimal signs (points, counts, amounts without a currency)."""
    if value is None or value == "":
        return ""
    number = _decimal(value)
    if number is None:
        return str(value)
    return numbers.format_decimal(number, format=fmt, locale=_locale())


def format_percent(value) -> str:
    if value is None or value == "":
        return ""
    return numbers.format_percent(value, locale=_locale())


FILTERS = {
    "format_money": format_money,
    "format_decimal": format_decimal,
    "format_percent": format_percent,
    "format_datetime_local": format_datetime_local,
    "format_date_local": format_date_local,
    "format_time_local": format_time_local,
    "format_moment": format_moment,
    "format_timedelta_local": format_timedelta_local,
}


def init_i18n_filters(app: Flask) -> None:
    """Register the filters (and the same functions as template globals)."""
    for name, function in FILTERS.items():
        app.jinja_env.filters.setdefault(name, function)
        app.jinja_env.globals.setdefault(name, function)

"""Template filters for the shop's pages: times in the vendor's timezone and the current language."""
from __future__ import annotations

from babel import dates
from flask import g

from ...services import clock
from ...services.i18n import current_locale
from . import bp


@bp.app_template_filter("localtime")
def localtime(value, fmt: str = "short") -> str:
    if value is None:
        return ""
    vendor = getattr(g, "vendor", None)
    tz = clock.zone(vendor.timezone if vendor is not None else "Europe/Luxembourg")
    return dates.format_datetime(value, fmt, tzinfo=tz, locale=current_locale())

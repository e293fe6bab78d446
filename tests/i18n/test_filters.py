"""portal/i18n_filters.py: numbers, money, dates and times for the language and the shop's timezone."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine
from flask import g, render_template_string

from portal import i18n_filters as f

UTC = dt.timezone.utc
MOMENT = dt.datetime(2026, 7, 1, 12, 35, tzinfo=UTC)  # 14:35 in Luxembourg (summer time)


@pytest.fixture
def filters_app(app):
    f.init_i18n_filters(app)
    return app


def in_request(app, lang, timezone=None):
    ctx = app.test_request_context(f"/?lang={lang}")
    ctx.push()
    if timezone:
        g.vendor = SimpleNamespace(timezone=timezone)
    return ctx


@pytest.mark.parametrize("lang, money, number", [
    ("en", "€12.50", "12,345.5"),
    ("fr", "12,50\u00a0€", "12\u202f345,5"),
    ("de", "12,50\u00a0€", "12.345,5"),
    ("lb", "12,50\u00a0€", "12.345,5"),
    ("lu", "12,50\u00a0€", "12.345,5"),
])
def test_money_and_numbers(filters_app, lang, money, number):
    ctx = in_request(filters_app, lang)
    try:
        assert f.format_money(Decimal("12.50"), "EUR") == money
        assert f.format_money("12.50") == money
        assert f.format_decimal(Decimal("12345.5")) == number
        assert f.format_money(None) == ""
    finally:
        ctx.pop()


@pytest.mark.parametrize("lang, datetime_short, date_medium, time_short", [
    ("en", "7/1/26, 2:35\u202fPM", "Jul 1, 2026", "2:35\u202fPM"),
    ("fr", "01/07/2026 14:35", "1 juil. 2026", "14:35"),
    ("de", "01.07.26, 14:35", "01.07.2026", "14:35"),
    ("lb", "01.07.26 14:35", "1. Juli 2026", "14:35"),
])
def test_dates_in_the_shops_timezone(filters_app, lang, datetime_short, date_medium, time_short):
    ctx = in_request(filters_app, lang, timezone="Europe/Luxembourg")
    try:
        assert f.format_datetime_local(MOMENT) == datetime_short
        assert f.format_date_local(MOMENT) == date_medium
        assert f.format_time_local(MOMENT) == time_short
        # another shop, another timezone
        assert "08:35" in f.format_datetime_local(MOMENT, tz="America/New_York") or \
            "8:35" in f.format_datetime_local(MOMENT, tz="America/New_York")
    finally:
        ctx.pop()


def test_moment_is_a_time_today_and_a_date_otherwise(filters_app):
    ctx = in_request(filters_app, "lb", timezone="Europe/Luxembourg")
    try:
        with time_machine.travel(dt.datetime(2026, 7, 1, 9, 0, tzinfo=UTC), tick=False):
            assert f.format_moment(MOMENT) == "14:35"
            assert f.format_moment(MOMENT + dt.timedelta(days=1)) == "02.07.26 14:35"
        assert f.format_timedelta_local(15 * 60) == "15 Minutten"
    finally:
        ctx.pop()


def test_filters_in_templates(filters_app):
    ctx = in_request(filters_app, "fr", timezone="Europe/Luxembourg")
    try:
        html = render_template_string("{{ amount|format_money('EUR') }} · {{ when|format_datetime_local }}",
                                      amount=Decimal("3.5"), when=MOMENT)
        assert html == "3,50\u00a0€ · 01/07/2026 14:35"
    finally:
        ctx.pop()


def test_naive_datetimes_are_utc(filters_app):
    ctx = in_request(filters_app, "de", timezone="Europe/Luxembourg")
    try:
        assert f.format_time_local(MOMENT.replace(tzinfo=None)) == "14:35"
    finally:
        ctx.pop()

"""The owner's dashboard: daily charts (server-rendered SVG), top staff, refusals by reason."""
from __future__ import annotations

from flask import request

from ...services import charts, programs, stats
from ...services.wallet import health as wallet_health
from ...web import render
from . import bp
from .helpers import actor

SERIES = ("enrolments", "stamps", "points", "redemptions")
PERIODS = (7, 30, 90)


@bp.get("/dashboard")
def dashboard():
    act = actor()
    days = request.args.get("days", 30, type=int)
    days = days if days in PERIODS else 30
    program_id = request.args.get("program_id", type=int)
    if program_id:
        programs.get_program(act, program_id)
    data = stats.vendor_stats(act, days, program_id or None)
    daily = data["daily"]
    short = [d[5:] for d in daily["days"]]  # MM-DD
    figures = {name: charts.bar_chart(short, daily[name], label_every=7 if days <= 30 else 14) for name in SERIES}
    return render("vendor/dashboard.html", "stats", data=data, charts=figures, days=days, periods=PERIODS,
                  program_id=program_id, programs=programs.list_programs(act),
                  wallet=wallet_health.summary(act, program_id or None))

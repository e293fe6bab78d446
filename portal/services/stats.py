"""Figures for the owners' dashboard and the operators' statistics."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, literal, select

from ..extensions import db
from ..models import LoyaltyCard, LoyaltyProgram, LoyaltyTransaction, Refusal, Vendor
from . import clock
from .actor import Actor


def _day_bounds(days: int, tz_name: str) -> list[dt.datetime]:
    """days+1 UTC instants: local midnights from ``days-1`` days ago to tomorrow."""
    today_start, _ = clock.local_day_bounds(clock.now(), tz_name)
    tz = clock.zone(tz_name)
    local_today = today_start.astimezone(tz).date()
    bounds = []
    for offset in range(days - 1, -2, -1):
        day = local_today - dt.timedelta(days=offset)
        bounds.append(dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(clock.UTC))
    return bounds


def _bucket(column, bounds: list[dt.datetime]):
    """Index of the local day a timestamp falls in, as a portable SQL expression (no DB timezone functions)."""
    expr = literal(0)
    for bound in bounds[1:-1]:
        expr = expr + case((column >= bound, 1), else_=0)
    return expr


def daily_series(program_ids: list[int], tz_name: str, days: int = 30) -> dict:
    bounds = _day_bounds(days, tz_name)
    labels = [b.astimezone(clock.zone(tz_name)).date().isoformat() for b in bounds[:-1]]
    series = {name: [0] * days for name in ("enrolments", "stamps", "points", "redemptions", "refusals")}
    if not program_ids:
        return {"days": labels, **series}
    start = bounds[0]
    tx = LoyaltyTransaction
    bucket = _bucket(tx.created_at, bounds).label("bucket")
    rows = db.session.execute(
        select(bucket,
               func.sum(case((tx.type == "stamp_add", tx.delta), else_=0)),
               func.sum(case((tx.type == "points_earn", tx.delta), else_=0)),
               func.sum(case((tx.type.in_(("stamp_redeem", "points_redeem")), 1), else_=0)))
        .where(tx.program_id.in_(program_ids), tx.created_at >= start).group_by(bucket))
    for index, stamps, points, redemptions in rows:
        series["stamps"][index] = int(stamps or 0)
        series["points"][index] = int(points or 0)
        series["redemptions"][index] = int(redemptions or 0)
    cbucket = _bucket(LoyaltyCard.created_at, bounds).label("bucket")
    for index, count in db.session.execute(
            select(cbucket, func.count()).where(LoyaltyCard.program_id.in_(program_ids),
                                                LoyaltyCard.created_at >= start).group_by(cbucket)):
        series["enrolments"][index] = int(count)
    rbucket = _bucket(Refusal.created_at, bounds).label("bucket")
    for index, count in db.session.execute(
            select(rbucket, func.count()).where(Refusal.program_id.in_(program_ids),
                                                Refusal.created_at >= start).group_by(rbucket)):
        series["refusals"][index] = int(count)
    return {"days": labels, **series}


def vendor_stats(actor: Actor, days: int = 30, program_id: int | None = None) -> dict:
    vendor = db.session.get(Vendor, actor.vendor_id)
    programs = [p for p in vendor.programs if program_id is None or p.id == program_id]
    ids = [p.id for p in programs]
    since = clock.now() - dt.timedelta(days=days)
    totals = {"cards": 0, "stamps_issued": 0, "points_issued": 0, "rewards_redeemed": 0}
    refusals = {"cooldown_active": 0, "daily_limit_reached": 0, "pin_invalid": 0, "pin_locked": 0}
    top_staff: list[dict] = []
    if ids:
        totals["cards"] = db.session.scalar(select(func.count()).select_from(LoyaltyCard)
                                            .where(LoyaltyCard.program_id.in_(ids))) or 0
        tx = LoyaltyTransaction
        row = db.session.execute(select(
            func.coalesce(func.sum(case((tx.type == "stamp_add", tx.delta), else_=0)), 0),
            func.coalesce(func.sum(case((tx.type == "points_earn", tx.delta), else_=0)), 0),
            func.coalesce(func.sum(case((tx.type.in_(("stamp_redeem", "points_redeem")), 1), else_=0)), 0),
        ).where(tx.program_id.in_(ids), tx.created_at >= since)).one()
        totals.update(stamps_issued=int(row[0]), points_issued=int(row[1]), rewards_redeemed=int(row[2]))
        for code, count in db.session.execute(select(Refusal.code, func.count()).where(
                Refusal.program_id.in_(ids), Refusal.created_at >= since).group_by(Refusal.code)):
            refusals[code] = int(count)
        for name, actions in db.session.execute(
                select(tx.staff_name, func.count()).where(tx.program_id.in_(ids), tx.created_at >= since,
                                                          tx.staff_name.is_not(None),
                                                          tx.type.in_(("stamp_add", "points_earn",
                                                                       "stamp_redeem", "points_redeem")))
                .group_by(tx.staff_name).order_by(func.count().desc()).limit(5)):
            top_staff.append({"staff_name": name, "actions": int(actions)})
    return {
        "vendor": vendor.slug,
        "period_days": days,
        "programs": len(programs),
        "totals": totals,
        "refusals": refusals,
        "top_staff": top_staff,
        "daily": daily_series(ids, vendor.timezone, days),
    }


def platform_stats() -> dict:
    vendors = db.session.scalar(select(func.count()).select_from(Vendor)) or 0
    active_vendors = db.session.scalar(select(func.count()).select_from(Vendor).where(Vendor.active.is_(True))) or 0
    programs = db.session.scalar(select(func.count()).select_from(LoyaltyProgram)) or 0
    cards = db.session.scalar(select(func.count()).select_from(LoyaltyCard)) or 0
    transactions = db.session.scalar(select(func.count()).select_from(LoyaltyTransaction)) or 0
    since = clock.now() - dt.timedelta(days=30)
    recent = db.session.scalar(select(func.count()).select_from(LoyaltyTransaction)
                               .where(LoyaltyTransaction.created_at >= since)) or 0
    return {"vendors": vendors, "active_vendors": active_vendors, "programs": programs, "cards": cards,
            "transactions": transactions, "transactions_30d": recent}


def program_figures(program_ids: list[int]) -> dict[int, dict]:
    """Cards and lifetime figures per program, for lists."""
    figures = {pid: {"cards": 0, "stamps_issued": 0, "points_issued": 0, "rewards_redeemed": 0}
               for pid in program_ids}
    if not program_ids:
        return figures
    for pid, cards, stamps, points, rewards in db.session.execute(
            select(LoyaltyCard.program_id, func.count(), func.coalesce(func.sum(LoyaltyCard.lifetime_stamps), 0),
                   func.coalesce(func.sum(LoyaltyCard.lifetime_points), 0),
                   func.coalesce(func.sum(LoyaltyCard.rewards_redeemed), 0))
            .where(LoyaltyCard.program_id.in_(program_ids)).group_by(LoyaltyCard.program_id)):
        figures[pid] = {"cards": int(cards), "stamps_issued": int(stamps), "points_issued": int(points),
                        "rewards_redeemed": int(rewards)}
    return figures

"""Figures for the owners' dashboard and the operators' statistics.

The dashboard reads rollup tables kept exact by database triggers (migration ``perf01``): ``loyalty_tx_rollup``
(per program, 15-minute UTC bucket and shard: stamps, points, redemptions), ``loyalty_staff_rollup`` (per program,
UTC hour and staff name: actions) and ``loyalty_card_rollup`` (enrolments per program and bucket). Every
time zone's midnight falls on a 15-minute boundary, so local days are sums of whole buckets; a "last N days"
window that starts inside a bucket adds that part from the ledger itself (a bounded index range scan). The live aggregates over the ledger
are kept below (``*_live``) as the reference the tests compare the rollups against. See docs/performance.md.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ARRAY, BigInteger, Column, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Table, \
    bindparam, case, func, literal, select

from ..db import UTCDateTime
from ..extensions import db
from ..models import LoyaltyCard, LoyaltyProgram, LoyaltyTransaction, Refusal, Vendor
from . import clock
from .actor import Actor

BUCKET = dt.timedelta(minutes=15)
STAFF_BUCKET = dt.timedelta(hours=1)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
ACTION_TYPES = ("stamp_add", "points_earn", "stamp_redeem", "points_redeem")

tx_rollup = Table(
    "loyalty_tx_rollup", db.metadata,
    Column("program_id", Integer, ForeignKey("loyalty_programs.id", ondelete="CASCADE"), primary_key=True),
    Column("bucket", UTCDateTime, primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    Column("stamps", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("redemptions", BigInteger, nullable=False),
)
staff_rollup = Table(
    "loyalty_staff_rollup", db.metadata,
    Column("program_id", Integer, ForeignKey("loyalty_programs.id", ondelete="CASCADE"), primary_key=True),
    Column("bucket", UTCDateTime, primary_key=True),
    Column("staff_name", String(120), primary_key=True),
    Column("actions", BigInteger, nullable=False),
)
card_rollup = Table(
    "loyalty_card_rollup", db.metadata,
    Column("program_id", Integer, ForeignKey("loyalty_programs.id", ondelete="CASCADE"), primary_key=True),
    Column("bucket", UTCDateTime, primary_key=True),
    Column("enrolments", BigInteger, nullable=False),
)
# Trigram indexes for cards.search_cards (PostgreSQL only; created by migration perf01).
for _name, _column in (("ix_loyalty_cards_name_trgm", "customer_name"), ("ix_loyalty_cards_email_trgm", "customer_email"),
                       ("ix_loyalty_cards_phone_trgm", "customer_phone"),
                       ("ix_loyalty_cards_number_trgm", "card_number")):
    if _name not in {i.name for i in LoyaltyCard.__table__.indexes}:
        Index(_name, LoyaltyCard.__table__.c[_column], postgresql_using="gin",
              postgresql_ops={_column: "gin_trgm_ops"}).ddl_if(dialect="postgresql")
if "ix_loyalty_cards_program_email_prefix" not in {i.name for i in LoyaltyCard.__table__.indexes}:
    Index("ix_loyalty_cards_program_email_prefix", LoyaltyCard.__table__.c.program_id,
          LoyaltyCard.__table__.c.customer_email,
          postgresql_ops={"customer_email": "text_pattern_ops"}).ddl_if(dialect="postgresql")


def _floor(moment: dt.datetime, size: dt.timedelta = BUCKET) -> dt.datetime:
    return moment - (moment - _EPOCH) % size


def _ceil(moment: dt.datetime, size: dt.timedelta = BUCKET) -> dt.datetime:
    floor = _floor(moment, size)
    return floor if floor == moment else floor + size


def _aligned(moment: dt.datetime) -> bool:
    return (moment - _EPOCH) % BUCKET == dt.timedelta(0)


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


def _refusals_per_day(program_ids: list[int], bounds: list[dt.datetime], start: dt.datetime) -> list[int]:
    """Refusals per local day, counted live: the refusal log is small next to the ledger (both series use it)."""
    counts = [0] * (len(bounds) - 1)
    rbucket = _bucket(Refusal.created_at, bounds).label("bucket")
    for index, count in db.session.execute(
            select(rbucket, func.count()).where(Refusal.program_id.in_(program_ids), Refusal.created_at >= start)
            .group_by(rbucket)):
        counts[index] = int(count)
    return counts


def _stats_scope(actor: Actor, days: int, program_id: int | None):
    """What vendor_stats and its live reference share: the vendor, its programs in scope, the window start, and
    the zeroed figures."""
    vendor = db.session.get(Vendor, actor.vendor_id)
    programs = [p for p in vendor.programs if program_id is None or p.id == program_id]
    ids = [p.id for p in programs]
    since = clock.now() - dt.timedelta(days=days)
    totals = {"cards": 0, "stamps_issued": 0, "points_issued": 0, "rewards_redeemed": 0}
    refusals = {"cooldown_active": 0, "daily_limit_reached": 0, "pin_invalid": 0, "pin_locked": 0}
    return vendor, programs, ids, since, totals, refusals, []


def daily_series_live(program_ids: list[int], tz_name: str, days: int = 30) -> dict:
    """The reference: the same series aggregated from the ledger and the cards themselves."""
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
    series["refusals"] = _refusals_per_day(program_ids, bounds, start)
    return {"days": labels, **series}


def _figures(vendor, days: int, programs: list, totals: dict, refusals, top_staff: list, daily) -> dict:
    """The dashboard's figures, in the one shape both implementations (rollup and live reference) return."""
    return {"vendor": vendor.slug, "period_days": days, "programs": len(programs), "totals": totals,
            "refusals": refusals, "top_staff": top_staff, "daily": daily}


def vendor_stats_live(actor: Actor, days: int = 30, program_id: int | None = None) -> dict:
    """The reference for vendor_stats: every figure aggregated from the ledger (a scan of the window)."""
    vendor, programs, ids, since, totals, refusals, top_staff = _stats_scope(actor, days, program_id)
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
    return _figures(vendor, days, programs, totals, refusals, top_staff,
                    daily_series_live(ids, vendor.timezone, days))


# --- From the rollups ------------------------------------------------------------------------------------------------

def _tx_live_partial(ids: list[int], start: dt.datetime, end: dt.datetime) -> list[int]:
    """(stamps, points, redemptions) of the ledger in [start, end): less than one bucket."""
    tx = LoyaltyTransaction
    row = db.session.execute(select(
        func.coalesce(func.sum(case((tx.type == "stamp_add", tx.delta), else_=0)), 0),
        func.coalesce(func.sum(case((tx.type == "points_earn", tx.delta), else_=0)), 0),
        func.coalesce(func.sum(case((tx.type.in_(("stamp_redeem", "points_redeem")), 1), else_=0)), 0),
    ).where(tx.program_id.in_(ids), tx.created_at >= start, tx.created_at < end)).one()
    return [int(v) for v in row]


def _staff_live_partial(ids: list[int], start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Staff actions of the ledger in [start, end): less than one hour."""
    tx = LoyaltyTransaction
    return {name: int(count) for name, count in db.session.execute(
        select(tx.staff_name, func.count()).where(tx.program_id.in_(ids), tx.created_at >= start, tx.created_at < end,
                                                  tx.staff_name.is_not(None), tx.type.in_(ACTION_TYPES))
        .group_by(tx.staff_name))}


def _by_day(column, bounds: list[dt.datetime]):
    """The index of the local day a bucket falls in, as SQL: PostgreSQL's width_bucket over the day bounds (one
    binary search per row), elsewhere the portable CASE sum of ``_bucket``."""
    inner = bounds[1:-1]
    if not inner:
        return literal(0)
    if db.session.get_bind().dialect.name == "postgresql":
        return func.width_bucket(column, bindparam("day_bounds", inner, type_=ARRAY(DateTime(timezone=True))))
    return _bucket(column, bounds)


def _tx_days(program_ids: list[int], first: dt.datetime, bounds: list[dt.datetime]) -> tuple[list[int], dict]:
    """One pass over the rollup: the (stamps, points, redemptions) of the buckets from ``first`` on, and per local
    day (from ``bounds[0]`` on) the same three sums."""
    r = tx_rollup.c
    start = min(first, bounds[0])
    day = _by_day(r.bucket, bounds).label("day")
    since_first = r.bucket >= first
    since_day0 = r.bucket >= bounds[0]
    rows = db.session.execute(
        select(day,
               func.sum(case((since_first, r.stamps), else_=0)), func.sum(case((since_first, r.points), else_=0)),
               func.sum(case((since_first, r.redemptions), else_=0)),
               func.sum(case((since_day0, r.stamps), else_=0)), func.sum(case((since_day0, r.points), else_=0)),
               func.sum(case((since_day0, r.redemptions), else_=0)))
        .where(r.program_id.in_(program_ids), r.bucket >= start).group_by(day)).all()
    totals = [0, 0, 0]
    days: dict[int, tuple[int, int, int]] = {}
    for index, *values in rows:
        values = [int(v or 0) for v in values]
        totals = [a + b for a, b in zip(totals, values[:3])]
        days[int(index)] = tuple(values[3:])
    return totals, days


def daily_series(program_ids: list[int], tz_name: str, days: int = 30, *, tx_days: dict | None = None) -> dict:
    bounds = _day_bounds(days, tz_name)
    if not all(_aligned(b) for b in bounds):  # a zone whose midnight is not on a 15-minute boundary
        return daily_series_live(program_ids, tz_name, days)
    labels = [b.astimezone(clock.zone(tz_name)).date().isoformat() for b in bounds[:-1]]
    series = {name: [0] * days for name in ("enrolments", "stamps", "points", "redemptions", "refusals")}
    if not program_ids:
        return {"days": labels, **series}
    start = bounds[0]  # no upper bound, like the live series: rows stamped later than "now" count on the last day
    if tx_days is None:
        _, tx_days = _tx_days(program_ids, start, bounds)
    for index, (stamps, points, redemptions) in tx_days.items():
        series["stamps"][index] = stamps
        series["points"][index] = points
        series["redemptions"][index] = redemptions
    c = card_rollup.c
    cday = _by_day(c.bucket, bounds).label("day")
    for index, count in db.session.execute(
            select(cday, func.sum(c.enrolments)).where(c.program_id.in_(program_ids), c.bucket >= start)
            .group_by(cday)).all():
        series["enrolments"][int(index)] = int(count or 0)
    series["refusals"] = _refusals_per_day(program_ids, bounds, start)
    return {"days": labels, **series}


def vendor_stats(actor: Actor, days: int = 30, program_id: int | None = None) -> dict:
    vendor, programs, ids, since, totals, refusals, top_staff = _stats_scope(actor, days, program_id)
    if ids:
        c = card_rollup.c
        totals["cards"] = int(db.session.scalar(select(func.coalesce(func.sum(c.enrolments), 0))
                                                .where(c.program_id.in_(ids))) or 0)
        # [since, first whole bucket) from the ledger, whole buckets from the rollup; the same rollup rows (one
        # query from the earlier of the two starts) also make the daily series.
        first = _ceil(since)
        bounds = _day_bounds(days, vendor.timezone)
        if all(_aligned(b) for b in bounds):
            rolled, tx_days = _tx_days(ids, first, bounds)
        else:
            rolled, tx_days = _tx_days(ids, first, [first, first])[0], None
        live = _tx_live_partial(ids, since, first)
        stamps, points, redemptions = (a + b for a, b in zip(rolled, live))
        totals.update(stamps_issued=stamps, points_issued=points, rewards_redeemed=redemptions)
        for code, count in db.session.execute(select(Refusal.code, func.count()).where(
                Refusal.program_id.in_(ids), Refusal.created_at >= since).group_by(Refusal.code)):
            refusals[code] = int(count)
        first_hour = _ceil(since, STAFF_BUCKET)
        staff = _staff_live_partial(ids, since, first_hour)
        s_ = staff_rollup.c
        for name, actions in db.session.execute(
                select(s_.staff_name, func.sum(s_.actions)).where(s_.program_id.in_(ids), s_.bucket >= first_hour)
                .group_by(s_.staff_name)):
            staff[name] = staff.get(name, 0) + int(actions or 0)
        ranked = sorted(((n, a) for n, a in staff.items() if a > 0), key=lambda item: (-item[1], item[0]))
        top_staff = [{"staff_name": name, "actions": actions} for name, actions in ranked[:5]]
    return _figures(vendor, days, programs, totals, refusals, top_staff,
                    daily_series(ids, vendor.timezone, days, tx_days=tx_days if ids else None))


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

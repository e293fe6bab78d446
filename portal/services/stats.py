"""Figures for the owners' dashboard and the operators' statistics.

The dashboard reads rollup tables kept exact by database triggers (migration ``perf01``): ``loyalty_tx_rollup``
(per program, 15-minute UTC bucket and shard: stamps, points, redemptions), ``loyalty_staff_rollup`` (per program,
UTC hour, staff name and shard, migration ``perf05``: actions) and ``loyalty_card_rollup`` (enrolments per program and bucket). Every
time zone's midnight falls on a 15-minute boundary, so local days are sums of whole buckets; a "last N days"
window that starts inside a bucket adds that part from the ledger itself (a bounded index range scan). Closed local
days are summed once and kept in a day cache (migration ``perf03``, "The day cache" below), so a long window reads
about one row per program and day. The live aggregates over the ledger are kept below (``*_live``) as the
reference the tests compare the rollups against. See docs/performance.md.
"""
from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager

from sqlalchemy import ARRAY, BigInteger, Column, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, \
    SmallInteger, String, Table, and_, any_, bindparam, case, func, literal, null, or_, select, text, true, union_all
from sqlalchemy.exc import IntegrityError, OperationalError

from ..storage import UTCDateTime, dialect_insert, is_busy, is_retryable
from ..extensions import db
from ..models import LoyaltyCard, LoyaltyProgram, LoyaltyTransaction, Refusal, Vendor
from . import clock
from .actor import Actor

log = logging.getLogger(__name__)
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
    # card id % 4, as in loyalty_tx_rollup (migration perf05): no one hot row per staff name and hour
    Column("shard", SmallInteger, primary_key=True, server_default=text("0")),
    Column("actions", BigInteger, nullable=False),
)
card_rollup = Table(
    "loyalty_card_rollup", db.metadata,
    Column("program_id", Integer, ForeignKey("loyalty_programs.id", ondelete="CASCADE"), primary_key=True),
    Column("bucket", UTCDateTime, primary_key=True),
    Column("enrolments", BigInteger, nullable=False),
)
# The day cache (migration perf03): see "The day cache" below.
_DAY_KEY = ("program_id", "day_start", "day_end")
day_rollup = Table(
    "loyalty_day_rollup", db.metadata,
    Column("program_id", Integer, ForeignKey("loyalty_programs.id", ondelete="CASCADE"), primary_key=True),
    Column("day_start", UTCDateTime, primary_key=True),
    Column("day_end", UTCDateTime, primary_key=True),
    Column("stamps", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("redemptions", BigInteger, nullable=False),
    Column("enrolments", BigInteger, nullable=False),
    Index("ix_loyalty_day_rollup_program_day_end", "program_id", "day_end"),
)
staff_day_rollup = Table(
    "loyalty_staff_day_rollup", db.metadata,
    Column("program_id", Integer, primary_key=True),
    Column("day_start", UTCDateTime, primary_key=True),
    Column("day_end", UTCDateTime, primary_key=True),
    Column("staff_name", String(120), primary_key=True),
    Column("actions", BigInteger, nullable=False),
    ForeignKeyConstraint(list(_DAY_KEY), [f"loyalty_day_rollup.{c}" for c in _DAY_KEY], ondelete="CASCADE"),
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
    rbucket = _by_day(Refusal.created_at, bounds).label("bucket")
    for index, count in db.session.execute(
            select(rbucket, func.count()).where(Refusal.program_id.in_(program_ids), Refusal.created_at >= start)
            .group_by(rbucket)):
        counts[index] = int(count)
    return counts


def _stats_scope(actor: Actor, days: int, program_id: int | None):
    """What vendor_stats and its live reference share: the vendor, its programs in scope, the window start, and
    the zeroed figures."""
    vendor = db.session.get(Vendor, actor.vendor_id)
    stmt = select(LoyaltyProgram).where(LoyaltyProgram.vendor_id == vendor.id).order_by(LoyaltyProgram.id)
    if program_id is not None:
        stmt = stmt.where(LoyaltyProgram.id == program_id)
    programs = list(db.session.scalars(stmt))
    ids = [p.id for p in programs]
    since = clock.now() - dt.timedelta(days=days)
    totals = {"cards": 0, "stamps_issued": 0, "points_issued": 0, "rewards_redeemed": 0}
    refusals = {"cooldown_active": 0, "daily_limit_reached": 0, "pin_invalid": 0, "pin_locked": 0}
    return vendor, programs, ids, since, totals, refusals, []


def _empty_series(bounds: list[dt.datetime], tz_name: str) -> tuple[list[str], dict[str, list[int]]]:
    """The local dates of the days between ``bounds`` and a zeroed series per figure."""
    labels = [b.astimezone(clock.zone(tz_name)).date().isoformat() for b in bounds[:-1]]
    return labels, {name: [0] * len(labels) for name in ("enrolments", "stamps", "points", "redemptions", "refusals")}


def daily_series_live(program_ids: list[int], tz_name: str, days: int = 30) -> dict:
    """The reference: the same series aggregated from the ledger and the cards themselves."""
    bounds = _day_bounds(days, tz_name)
    labels, series = _empty_series(bounds, tz_name)
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


def _staff_actions(ids: list[int], start: dt.datetime, end: dt.datetime):
    """Conditions on the ledger: staff actions of these programs in [start, end)."""
    tx = LoyaltyTransaction
    return (tx.program_id.in_(ids), tx.created_at >= start, tx.created_at < end, tx.staff_name.is_not(None),
            tx.type.in_(ACTION_TYPES))


def _staff_live_partial(ids: list[int], start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Staff actions of the ledger in [start, end): less than one hour."""
    tx = LoyaltyTransaction
    return {name: int(count) for name, count in db.session.execute(
        select(tx.staff_name, func.count()).where(*_staff_actions(ids, start, end)).group_by(tx.staff_name))}


def _by_day(column, bounds: list[dt.datetime]):
    """The index of the local day a bucket falls in, as SQL: PostgreSQL's width_bucket over the day bounds (one
    binary search per row), elsewhere the portable CASE sum of ``_bucket``."""
    inner = bounds[1:-1]
    if not inner:
        return literal(0)
    if db.session.get_bind().dialect.name == "postgresql":
        return func.width_bucket(column, bindparam("day_bounds", inner, type_=ARRAY(DateTime(timezone=True))))
    return _bucket(column, bounds)


def _outside(column, skip: tuple[dt.datetime, dt.datetime] | None):
    """SQL: ``column`` lies outside the range [start, end) the day cache already answers (None: no such range)."""
    return true() if skip is None else or_(column < skip[0], column >= skip[1])


def _tx_days(program_ids: list[int], first: dt.datetime, bounds: list[dt.datetime],
             skip: tuple[dt.datetime, dt.datetime] | None = None) -> tuple[list[int], dict]:
    """One pass over the rollup (outside ``skip``): the (stamps, points, redemptions) of the buckets from ``first``
    on, and per local day (from ``bounds[0]`` on) the same three sums."""
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
        .where(r.program_id.in_(program_ids), r.bucket >= start, _outside(r.bucket, skip)).group_by(day)).all()
    totals = [0, 0, 0]
    days: dict[int, tuple[int, int, int]] = {}
    for index, *values in rows:
        values = [int(v or 0) for v in values]
        totals = [a + b for a, b in zip(totals, values[:3])]
        days[int(index)] = tuple(values[3:])
    return totals, days


def _staff_window(ids: list[int], since: dt.datetime, skip: tuple[dt.datetime, dt.datetime] | None) -> dict:
    """Staff actions from ``since`` on, outside the range ``skip`` the day cache answers: whole hours from the
    hourly rollup (one query), the rest — less than an hour at each edge — from the ledger."""
    pieces = [(since, skip[0]), (skip[1], None)] if skip else [(since, None)]
    staff: dict[str, int] = {}
    s_ = staff_rollup.c
    hours = []
    for start, end in pieces:
        first_hour = _ceil(start, STAFF_BUCKET)
        last_hour = None if end is None else _floor(end, STAFF_BUCKET)
        if last_hour is not None and last_hour <= first_hour:  # no whole hour in between
            if start < end:
                _add_counts(staff, _staff_live_partial(ids, start, end))
            continue
        if start < first_hour:
            _add_counts(staff, _staff_live_partial(ids, start, first_hour))
        hours.append(s_.bucket >= first_hour if last_hour is None else
                     and_(s_.bucket >= first_hour, s_.bucket < last_hour))
        if last_hour is not None and last_hour < end:
            _add_counts(staff, _staff_live_partial(ids, last_hour, end))
    if hours:
        _add_counts(staff, db.session.execute(
            select(s_.staff_name, func.sum(s_.actions)).where(s_.program_id.in_(ids), or_(*hours))
            .group_by(s_.staff_name)).all())
    return staff


def _add_counts(into: dict[str, int], counts) -> None:
    for name, count in dict(counts).items():
        into[name] = into.get(name, 0) + int(count or 0)


# --- The day cache (migration perf03) ---------------------------------------------------------------------------------
#
# ``loyalty_day_rollup`` holds, per program, the sums of one closed local day [day_start, day_end) (UTC instants) —
# whatever time zone asked for it — and ``loyalty_staff_day_rollup`` the staff actions of the same range. Triggers
# on the ledger and the cards delete the cached ranges containing the created_at of any row inserted or deleted
# there, so a cached range always equals the rollups it was summed from. Days ending after ``now - CACHE_SETTLE``
# and a window's open edges (the partial first day, today) are read from the 15-minute rollups as before.

#: A day is cached once it ended this long ago. A ledger row's ``created_at`` is taken just before its INSERT, and
#: an insert cannot see a concurrent request's uncommitted cache row (nor that request the uncommitted ledger row):
#: a unit of work still open when its day ends could otherwise add a row to a day another request has just summed.
#: Every unit of work commits long before this (requests time out after 60 s). SQLite needs no margin (one writer
#: at a time; a fill from a stale snapshot fails) but gets the same, for one behaviour.
CACHE_SETTLE = dt.timedelta(hours=1)


def _cached_run(bounds: list[dt.datetime], since: dt.datetime, now: dt.datetime) -> tuple[int, int]:
    """The days ``[k, m)`` of the window the day cache answers: from the first whole day inside the window
    (``bounds[k] >= since``) to the last one that ended CACHE_SETTLE ago or earlier. ``k == m``: none."""
    k = next(i for i, bound in enumerate(bounds) if bound >= since)
    m = k
    while m + 1 < len(bounds) and bounds[m + 1] <= now - CACHE_SETTLE:
        m += 1
    return k, m


def _one_of(column, instants: list[dt.datetime]):
    """SQL: ``column IN instants`` (PostgreSQL: one array parameter instead of hundreds)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, instants, type_=ARRAY(DateTime(timezone=True))))
    return column.in_(instants)


def _day_cache(ids: list[int], bounds: list[dt.datetime]) -> tuple[list[list[int]], dict[str, int]]:
    """For the consecutive closed local days between ``bounds``: per day, (stamps, points, redemptions,
    enrolments) summed over the programs, and the staff actions of all those days. Read from the cache; the
    (program, day) pairs not in it are summed from the 15-minute rollups and stored for the next request."""
    d, s = day_rollup.c, staff_day_rollup.c
    starts, ends = bounds[:-1], bounds[1:]
    index = {start: j for j, start in enumerate(starts)}
    # Both ends among this zone's consecutive midnights: exactly one of these days (a cached range is one local
    # day, shorter than two of ours), never a day another time zone cached. One statement, one snapshot: the staff
    # sums are those of exactly the day rows read (the staff rows hang off them).
    mine = (d.program_id.in_(ids), _one_of(d.day_start, starts), _one_of(d.day_end, ends))
    staff_mine = (s.program_id.in_(ids), _one_of(s.day_start, starts), _one_of(s.day_end, ends))
    rows = db.session.execute(union_all(
        select(d.program_id, d.day_start, d.day_end, d.stamps, d.points, d.redemptions, d.enrolments,
               null().label("staff_name")).where(*mine),
        select(null(), null(), null(), func.sum(s.actions), literal(0), literal(0), literal(0), s.staff_name)
        .where(*staff_mine).group_by(s.staff_name))).all()
    per_day = [[0, 0, 0, 0] for _ in starts]
    staff: dict[str, int] = {}
    present = set()
    for program_id, start, _, *values, staff_name in rows:
        if staff_name is not None:
            _add_counts(staff, {staff_name: values[0]})
        else:
            j = index[start]
            present.add((program_id, j))
            per_day[j] = [a + int(b) for a, b in zip(per_day[j], values)]
    missing = [(pid, j) for pid in ids for j in range(len(starts)) if (pid, j) not in present]
    if missing:
        computed = _sum_days(sorted({pid for pid, _ in missing}), bounds, sorted({j for _, j in missing}))
        fresh = {key: computed[key] for key in missing}
        for (_, j), (values, actions) in fresh.items():
            per_day[j] = [a + b for a, b in zip(per_day[j], values)]
            _add_counts(staff, actions)
        _store_days(fresh, bounds)
    return per_day, staff


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    """Sorted indexes as runs of consecutive ones, [start, end)."""
    runs: list[tuple[int, int]] = []
    for i in indexes:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _sum_days(ids: list[int], bounds: list[dt.datetime], wanted: list[int]) -> dict:
    """{(program, day): ([stamps, points, redemptions, enrolments], {staff: actions})} for the wanted days (indexes
    of ``bounds``), from the rollups: one grouped pass per run of consecutive days. Local days are whole 15-minute
    buckets; a midnight inside a UTC hour (zones with a :30 or :45 offset) splits that hour of the staff rollup,
    so such hours are counted from the ledger instead (one indexed hour per midnight)."""
    out = {(pid, j): ([0, 0, 0, 0], {}) for pid in ids for j in wanted}
    r, c, s_ = tx_rollup.c, card_rollup.c, staff_rollup.c
    for a, b in _runs(wanted):
        run = bounds[a:b + 1]
        day = _by_day(r.bucket, run)
        for pid, j, *values in db.session.execute(
                select(r.program_id, day, func.sum(r.stamps), func.sum(r.points), func.sum(r.redemptions))
                .where(r.program_id.in_(ids), r.bucket >= run[0], r.bucket < run[-1]).group_by(r.program_id, day)):
            out[(pid, a + int(j))][0][:3] = [int(v or 0) for v in values]
        day = _by_day(c.bucket, run)
        for pid, j, count in db.session.execute(
                select(c.program_id, day, func.sum(c.enrolments))
                .where(c.program_id.in_(ids), c.bucket >= run[0], c.bucket < run[-1]).group_by(c.program_id, day)):
            out[(pid, a + int(j))][0][3] = int(count or 0)
        split_hours = sorted({_floor(x, STAFF_BUCKET) for x in run if _floor(x, STAFF_BUCKET) != x})
        day = _by_day(s_.bucket, run)
        hours = [s_.program_id.in_(ids), s_.bucket >= run[0], s_.bucket < run[-1]]
        if split_hours:
            hours.append(s_.bucket.not_in(split_hours))
        for pid, j, name, actions in db.session.execute(
                select(s_.program_id, day, s_.staff_name, func.sum(s_.actions))
                .where(*hours).group_by(s_.program_id, day, s_.staff_name)):
            _add_counts(out[(pid, a + int(j))][1], {name: actions})
        tx = LoyaltyTransaction
        for i, midnight in enumerate(run):
            hour = _floor(midnight, STAFF_BUCKET)
            if hour == midnight:
                continue
            after = case((tx.created_at >= midnight, 1), else_=0)
            for pid, name, is_after, count in db.session.execute(
                    select(tx.program_id, tx.staff_name, after, func.count())
                    .where(*_staff_actions(ids, hour, hour + STAFF_BUCKET))
                    .group_by(tx.program_id, tx.staff_name, after)):
                j = a + i - 1 + int(is_after)  # run[i] ends day a+i-1 and starts day a+i
                if a <= j < b:
                    _add_counts(out[(pid, j)][1], {name: count})
    return out


def _store_days(sums: dict, bounds: list[dt.datetime]) -> None:
    """Insert computed days into the cache, best effort, in a savepoint: a concurrent request may have stored
    them (ON CONFLICT DO NOTHING), a program may be going away (foreign key), and SQLite may refuse the write in a
    read transaction ("database is locked": another connection wrote since it began, or holds the write lock) —
    then the next request tries again. The figures of this request are already exact either way."""
    if not sums:
        return
    days = [{"program_id": pid, "day_start": bounds[j], "day_end": bounds[j + 1], "stamps": v[0], "points": v[1],
             "redemptions": v[2], "enrolments": v[3]} for (pid, j), (v, _) in sorted(sums.items())]
    staff = [{"program_id": pid, "day_start": bounds[j], "day_end": bounds[j + 1], "staff_name": name,
              "actions": count}
             for (pid, j), (_, actions) in sorted(sums.items()) for name, count in sorted(actions.items()) if count]
    try:
        with _no_busy_wait(), db.session.begin_nested():
            db.session.execute(dialect_insert(day_rollup).on_conflict_do_nothing(), days)
            if staff:
                db.session.execute(dialect_insert(staff_day_rollup).on_conflict_do_nothing(), staff)
    except (IntegrityError, OperationalError) as exc:
        if isinstance(exc, OperationalError) and not (is_retryable(exc) or is_busy(exc)):
            raise
        log.info("day cache not stored this time: %s", exc.orig)


@contextmanager
def _no_busy_wait():
    """SQLite: fail at once rather than wait up to the busy timeout for the write lock (the cache can wait)."""
    conn = db.session.connection()
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar())
    conn.exec_driver_sql("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {previous}")


def vendor_stats(actor: Actor, days: int = 30, program_id: int | None = None) -> dict:
    """The dashboard from the rollups: the closed days of the window from the day cache, the rest — the partial
    first day, the last hour's days, today — from the 15-minute rollups, the first partial bucket from the
    ledger. Falls back to the live daily series for a zone whose midnight is not on a 15-minute boundary."""
    vendor, programs, ids, since, totals, refusals, top_staff = _stats_scope(actor, days, program_id)
    if not ids:
        return _figures(vendor, days, programs, totals, refusals, top_staff,
                        daily_series_live(ids, vendor.timezone, days))
    bounds = _day_bounds(days, vendor.timezone)
    aligned = all(_aligned(b) for b in bounds)
    c = card_rollup.c
    totals["cards"] = int(db.session.scalar(select(func.coalesce(func.sum(c.enrolments), 0))
                                            .where(c.program_id.in_(ids))) or 0)
    first = _ceil(since)
    k, m = _cached_run(bounds, since, clock.now()) if aligned else (0, 0)
    skip = (bounds[k], bounds[m]) if m > k else None
    cached, cached_staff = _day_cache(ids, bounds[k:m + 1]) if skip else ([], {})
    # [since, first whole bucket) from the ledger, whole buckets outside the cached days from the rollup; the same
    # rollup rows (one query from the earlier of the two starts) also make the rest of the daily series.
    rolled, tx_days = _tx_days(ids, first, bounds if aligned else [first, first], skip)
    live = _tx_live_partial(ids, since, first)
    stamps, points, redemptions = (a + b + sum(day[n] for day in cached)
                                   for n, (a, b) in enumerate(zip(rolled, live)))
    totals.update(stamps_issued=stamps, points_issued=points, rewards_redeemed=redemptions)
    for code, count in db.session.execute(select(Refusal.code, func.count()).where(
            Refusal.program_id.in_(ids), Refusal.created_at >= since).group_by(Refusal.code)):
        refusals[code] = int(count)
    staff = _staff_window(ids, since, skip)
    _add_counts(staff, cached_staff)
    ranked = sorted(((n, a) for n, a in staff.items() if a > 0), key=lambda item: (-item[1], item[0]))
    top_staff = [{"staff_name": name, "actions": actions} for name, actions in ranked[:5]]
    daily = _daily_series(ids, vendor.timezone, bounds, tx_days, skip, k, cached) if aligned else \
        daily_series_live(ids, vendor.timezone, days)
    return _figures(vendor, days, programs, totals, refusals, top_staff, daily)


def _daily_series(program_ids: list[int], tz_name: str, bounds: list[dt.datetime], tx_days: dict,
                  skip: tuple[dt.datetime, dt.datetime] | None, k: int, cached: list[list[int]]) -> dict:
    """The daily series: the cached days from index ``k`` on, the other days from ``tx_days`` (the tx rollup
    pass) and the enrolment rollup outside ``skip``; refusals counted live."""
    labels, series = _empty_series(bounds, tz_name)
    for index, values in tx_days.items():
        series["stamps"][index], series["points"][index], series["redemptions"][index] = values
    c = card_rollup.c
    cday = _by_day(c.bucket, bounds).label("day")
    # no upper bound, like the live series: rows stamped later than "now" count on the last day
    for index, count in db.session.execute(
            select(cday, func.sum(c.enrolments)).where(c.program_id.in_(program_ids), c.bucket >= bounds[0],
                                                       _outside(c.bucket, skip)).group_by(cday)).all():
        series["enrolments"][int(index)] = int(count or 0)
    for offset, values in enumerate(cached):
        for name, value in zip(("stamps", "points", "redemptions", "enrolments"), values):
            series[name][k + offset] = value
    series["refusals"] = _refusals_per_day(program_ids, bounds, bounds[0])
    return {"days": labels, **series}


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

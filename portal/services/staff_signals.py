"""Staff integrity signals (issue 17): patterns in the ledger that an owner should look at, per staff member.

A signal is computed from the ledger when asked — the Staff view, the dashboard badge, the API, the weekly digest —
so it is up to date with the last stamp, and nothing has to be kept in step with the ledger. What keeps it cheap:

* a signal belongs to one **ISO week in the shop's time zone** (Monday 00:00 to Monday 00:00 local): the rows
  read are one week's;
* one person's rows of a week are read through ``ix_loyalty_transactions_program_staff_created`` (program, staff
  name, time; migration ``staff01``): the Staff view of one person reads that person's rows only;
* the "per hour of presence" figures come from the dashboard's staff rollup (``loyalty_staff_rollup``: program,
  UTC hour, staff name, actions — kept exact by the ledger's trigger, ``perf01``/``perf05``), not from the ledger;
* the shop's median card is read only when a person has a card that could be flagged at all (≥ the minimum).

A person is a **staff name** as the ledger records it (the PIN's name, or the login's name when no PIN was used):
the same key as the dashboard's "top staff". Their **logins** are the accounts their PINs are linked to and the
accounts that acted under that name without a PIN; a card is "their own" when its e-mail equals one of those
logins' e-mail (both are stored lower-case).

The signals and their thresholds (settings, ``config.STAFF_SIGNAL_DEFAULTS``, environment variables; docs/staff-signals.md):

* ``self_card`` — a person stamped or redeemed on a card whose e-mail is one of their logins'.
* ``favourite_card`` — a person gave one card at least ``STAFF_SIGNAL_FAVOURITE_MIN_STAMPS`` (10) stamps in the
  week and at least ``STAFF_SIGNAL_FAVOURITE_FACTOR`` (5) × the shop's median card (stamps per card stamped that
  week, all staff).
* ``busy_hour`` — a person's actions in one hour are at least ``STAFF_SIGNAL_HOUR_MIN_ACTIONS`` (10) and at least
  ``STAFF_SIGNAL_HOUR_FACTOR`` (3) × the shop's median for that weekday and hour (over every person present at
  that weekday and hour in the last ``STAFF_SIGNAL_HOUR_BASELINE_WEEKS`` (4) weeks).
* ``out_of_hours`` — actions outside the shop's opening hours (if it set any) by more than
  ``STAFF_SIGNAL_HOURS_GRACE_MINUTES`` (15), per person and day.
* ``burst`` — at least ``STAFF_SIGNAL_BURST_CARDS`` (5) different cards given stamps or points by one person
  within ``STAFF_SIGNAL_BURST_SECONDS`` (60).
* ``quick_redeem`` — a redemption within ``STAFF_SIGNAL_QUICK_REDEEM_SECONDS`` (120) after the same person gave the
  card stamps or points worth at least ``STAFF_SIGNAL_QUICK_REDEEM_PERCENT`` (50 %) of the reward, with nobody else
  between (a single stamp before redeeming is the normal "10th coffee").
"""
from __future__ import annotations

import datetime as dt
import re
import statistics
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import BigInteger, and_, case, cast, extract, func, literal, or_, select

from ..extensions import db
from ..models import (LoyaltyCard, LoyaltyProgram, LoyaltyTransaction, OpeningHours, Refusal, SignalReview,
                      StaffPin, User, Vendor)
from . import clock
from .actor import Actor
from .errors import Conflict, Forbidden, NotFound, ValidationError
from .validation import Fields

from ..config import STAFF_SIGNAL_DEFAULTS as SIGNAL_SETTINGS  # noqa: E402  (one place for the defaults)
KINDS = ("self_card", "favourite_card", "busy_hour", "out_of_hours", "burst", "quick_redeem")
KIND_LABELS = {
    "self_card": _l("Own card"),
    "favourite_card": _l("Favourite card"),
    "busy_hour": _l("Unusually busy hour"),
    "out_of_hours": _l("Outside opening hours"),
    "burst": _l("Burst of stamps"),
    "quick_redeem": _l("Redeemed right after stamping"),
}
ACTION_TYPES = ("stamp_add", "points_earn", "stamp_redeem", "points_redeem")
EARN_TYPES = ("stamp_add", "points_earn")
REDEEM_TYPES = ("stamp_redeem", "points_redeem")
WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")  # years 2000–2099 (parse_week)


def setting(name: str):
    return current_app.config.get(name, SIGNAL_SETTINGS[name])


# --- Weeks --------------------------------------------------------------------------------------------------------

def week_label(monday: dt.date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year:04d}-W{week:02d}"


def parse_week(value: str | None, tz_name: str) -> dt.date:
    """The Monday of an ISO week "2026-W49"; the current week (in the shop's zone) when empty."""
    if not value:
        today = clock.now().astimezone(clock.zone(tz_name)).date()
        return today - dt.timedelta(days=today.weekday())
    match = WEEK_RE.match(value.strip())
    try:
        if match is None or not 2000 <= int(match.group(1)) <= 2099:
            raise ValueError(value)
        return dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise ValidationError(_l("A week is written like 2026-W49."),
                              fields={"week": [_l("A week is written like 2026-W49.")]}) from None


def week_bounds(monday: dt.date, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    tz = clock.zone(tz_name)
    start = dt.datetime.combine(monday, dt.time(0), tzinfo=tz).astimezone(clock.UTC)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(0), tzinfo=tz).astimezone(clock.UTC)
    return start, end


# --- Opening hours ------------------------------------------------------------------------------------------------

def _owner(actor: Actor) -> None:
    if actor.vendor_id is None or actor.role not in ("owner", "api"):
        raise Forbidden()


def opening_hours(vendor_id: int) -> dict[int, tuple[int, int]]:
    """{weekday: (opens minute, closes minute)}; empty when the shop set no hours."""
    rows = db.session.scalars(select(OpeningHours).where(OpeningHours.vendor_id == vendor_id))
    return {r.weekday: (r.opens_minute, r.closes_minute) for r in rows}


def _minute(text: str) -> int | None:
    match = re.match(r"^([01]?\d|2[0-4]):([0-5]\d)$", text.strip())
    if match is None:
        return None
    value = int(match.group(1)) * 60 + int(match.group(2))
    return value if value <= 1440 else None


def set_opening_hours(actor: Actor, data: dict) -> dict[int, tuple[int, int]]:
    """``data``: ``opens_0`` … ``closes_6`` ("08:30", "18:00"; both empty: closed that day). Every day empty: no
    opening hours (the out-of-hours signal is off)."""
    _owner(actor)
    f = Fields(data)
    hours: dict[int, tuple[int, int]] = {}
    for day in range(7):
        opens = (f.string(f"opens_{day}", max_length=5, default="") or "").strip()
        closes = (f.string(f"closes_{day}", max_length=5, default="") or "").strip()
        if not opens and not closes:
            continue
        start, end = _minute(opens) if opens else None, _minute(closes) if closes else None
        if start is None:
            f.error(f"opens_{day}", _l("Enter a time like 08:30."))
        if end is None:
            f.error(f"closes_{day}", _l("Enter a time like 18:00."))
        if start is not None and end is not None:
            if start >= end:
                f.error(f"closes_{day}", _l("The closing time must be after the opening time."))
            else:
                hours[day] = (start, end)
    f.done()
    db.session.query(OpeningHours).filter(OpeningHours.vendor_id == actor.vendor_id).delete()
    for day, (start, end) in hours.items():
        db.session.add(OpeningHours(vendor_id=actor.vendor_id, weekday=day, opens_minute=start, closes_minute=end))
    db.session.flush()
    return hours


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# --- Signals ------------------------------------------------------------------------------------------------------

@dataclass
class Signal:
    key: str
    kind: str
    staff_name: str
    at: dt.datetime  # when it happened (its first transaction)
    figures: dict
    transaction_ids: list[int]
    review: SignalReview | None = None
    transactions: list = field(default_factory=list)  # filled by ``attach_transactions``

    @property
    def label(self) -> str:
        return str(KIND_LABELS[self.kind])

    @property
    def explanation(self) -> str:
        return explain(self.kind, self.staff_name, self.figures)


def explain(kind: str, staff: str, f: dict) -> str:
    """The plain sentence an owner reads, in the current language."""
    if kind == "self_card":
        return _("%(staff)s gave %(actions)s stamp(s) or redemption(s) on card %(card)s, whose e-mail is their own "
                 "login's.", staff=staff, actions=f["actions"], card=f["card_number"])
    if kind == "favourite_card":
        return _("%(staff)s gave card %(card)s %(count)s stamps this week; the shop's median card got "
                 "%(median)s.", staff=staff, card=f["card_number"], count=f["stamps"], median=f["median"])
    if kind == "busy_hour":
        return _("%(staff)s made %(actions)s stamps or redemptions on %(hour)s; the shop's usual for that weekday "
                 "and hour is %(median)s per person.", staff=staff, actions=f["actions"], hour=f["hour"],
                 median=f["median"])
    if kind == "out_of_hours":
        return _("%(staff)s made %(actions)s stamps or redemptions on %(day)s outside the opening hours "
                 "(%(hours)s), between %(first)s and %(last)s.", staff=staff, actions=f["actions"], day=f["day"],
                 hours=f["hours"] or _("closed"), first=f["first"], last=f["last"])
    if kind == "burst":
        return _("%(staff)s stamped %(cards)s different cards within %(seconds)s seconds (from %(at)s).",
                 staff=staff, cards=f["cards"], seconds=f["seconds"], at=f["at"])
    if kind == "quick_redeem":
        given = (_("%(n)s stamp(s)", n=f["given"]) if f.get("unit") == "stamps"
                 else _("%(n)s point(s)", n=f["given"]))
        return _("%(staff)s gave card %(card)s %(given)s and redeemed its reward %(seconds)s seconds later.",
                 staff=staff, card=f["card_number"], given=given, seconds=f["seconds"])
    return kind


@dataclass
class _Scope:
    vendor: Vendor
    tz: dt.tzinfo
    programs: dict[int, LoyaltyProgram]
    monday: dt.date
    start: dt.datetime
    end: dt.datetime
    staff: str | None
    _midnights: list | None = None

    @property
    def week(self) -> str:
        return week_label(self.monday)

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.tz)

    def day_of(self, moment: dt.datetime) -> dt.date:
        """The local date of a moment of the week (by the days' UTC bounds: no time-zone arithmetic per row)."""
        if self._midnights is None:
            self._midnights = [dt.datetime.combine(self.monday + dt.timedelta(days=i), dt.time(0), tzinfo=self.tz)
                               .astimezone(clock.UTC) for i in range(1, 7)]
        return self.monday + dt.timedelta(days=bisect_right(self._midnights, moment))


def _scope(actor: Actor, week: str | None, staff: str | None) -> _Scope:
    from .validation import FORBIDDEN_CHARS_RE

    if actor.vendor_id is None:
        raise NotFound()
    if staff is not None and (len(staff) > 120 or FORBIDDEN_CHARS_RE.search(staff)):
        raise NotFound()
    vendor = db.session.get(Vendor, actor.vendor_id)
    programs = {p.id: p for p in db.session.scalars(select(LoyaltyProgram)
                                                    .where(LoyaltyProgram.vendor_id == vendor.id))}
    monday = parse_week(week, vendor.timezone)
    start, end = week_bounds(monday, vendor.timezone)
    return _Scope(vendor, clock.zone(vendor.timezone), programs, monday, start, end, staff)


_ROW_COLUMNS = (LoyaltyTransaction.id, LoyaltyTransaction.program_id, LoyaltyTransaction.card_id,
                LoyaltyTransaction.type, LoyaltyTransaction.delta, LoyaltyTransaction.created_at,
                LoyaltyTransaction.staff_name, LoyaltyTransaction.staff_pin_id, LoyaltyTransaction.user_id,
                LoyaltyTransaction.api_key_id)


def _in_scope(scope: _Scope, *types: str):
    """The conditions of the scope's rows: its programs, its person (or every named person), its week, ``types``
    (default: the staff actions). One person's rows are an index range (program, staff name, time)."""
    tx = LoyaltyTransaction
    staff = tx.staff_name == scope.staff if scope.staff is not None else tx.staff_name.is_not(None)
    return (tx.program_id.in_(list(scope.programs)), staff, tx.created_at >= scope.start, tx.created_at < scope.end,
            tx.type.in_(types or ACTION_TYPES))


def _rows(scope: _Scope, *conditions, types: tuple = ()) -> list:
    """The scope's rows that meet ``conditions``, oldest first, as plain rows (no ORM machinery per row)."""
    tx = LoyaltyTransaction
    stmt = select(*_ROW_COLUMNS).where(*_in_scope(scope, *types), *conditions).order_by(tx.created_at, tx.id)
    return db.session.connection().execute(stmt).all()


def _epoch(column):
    """Seconds since 1970 of a timestamp, in SQL (PostgreSQL's and SQLite's ``extract``)."""
    return extract("epoch", column)


def _card_numbers(card_ids) -> dict[int, str]:
    ids = list(set(card_ids))
    if not ids:
        return {}
    return dict(db.session.execute(select(LoyaltyCard.id, LoyaltyCard.card_number)
                                   .where(LoyaltyCard.id.in_(ids))).all())


def _key(kind: str, scope: _Scope, subject, staff: str) -> str:
    return f"{kind}:{scope.week}:{subject}:{staff}"


def _self_card(scope: _Scope) -> list[Signal]:
    tx = LoyaltyTransaction
    ids = list(scope.programs)
    emails: dict[str, set[str]] = defaultdict(set)
    pins = select(StaffPin.staff_name, User.email).join(User, StaffPin.user_id == User.id).where(
        StaffPin.program_id.in_(ids))
    if scope.staff is not None:
        pins = pins.where(StaffPin.staff_name == scope.staff)
    for name, email in db.session.execute(pins):
        emails[name].add(email.lower())
    # Logins that acted under a name without a PIN (the tablet's user, when the program needs no PIN).
    acted = db.session.execute(select(tx.staff_name, User.email).distinct().join(User, tx.user_id == User.id).where(
        *_in_scope(scope), tx.staff_pin_id.is_(None), User.vendor_id == scope.vendor.id)).all()
    for name, email in acted:
        emails[name].add(email.lower())
    every = set().union(*emails.values()) if emails else set()
    if not every:
        return []
    own: dict[int, str] = dict(db.session.execute(
        select(LoyaltyCard.id, LoyaltyCard.customer_email).where(LoyaltyCard.program_id.in_(ids),
                                                                 LoyaltyCard.customer_email.in_(every))).all())
    if not own:
        return []
    groups: dict[tuple[str, int], list] = defaultdict(list)
    for r in _rows(scope, tx.card_id.in_(list(own))):
        if own[r.card_id] in emails.get(r.staff_name, ()):
            groups[r.staff_name, r.card_id].append(r)
    numbers = _card_numbers(card for _, card in groups)
    return [Signal(_key("self_card", scope, card, name), "self_card", name, group[0].created_at,
                   {"card_number": numbers.get(card, ""), "actions": len(group)}, [r.id for r in group])
            for (name, card), group in groups.items()]


def _favourite_card(scope: _Scope, skip: set) -> list[Signal]:
    tx = LoyaltyTransaction
    minimum = int(setting("STAFF_SIGNAL_FAVOURITE_MIN_STAMPS"))
    total = func.sum(tx.delta)
    candidates = {(name, card): int(n) for name, card, n in db.session.execute(
        select(tx.staff_name, tx.card_id, total).where(*_in_scope(scope, "stamp_add"))
        .group_by(tx.staff_name, tx.card_id).having(total >= minimum)) if (name, card) not in skip}
    if not candidates:
        return []
    # The shop's median card of the week (every card stamped, by anybody): read only when a card could be flagged.
    per_card = select(func.sum(tx.delta)).where(
        tx.program_id.in_(list(scope.programs)), tx.type == "stamp_add", tx.created_at >= scope.start,
        tx.created_at < scope.end).group_by(tx.card_id)
    counts = list(db.session.scalars(per_card))
    median = statistics.median(counts) if counts else 0
    factor = float(setting("STAFF_SIGNAL_FAVOURITE_FACTOR"))
    flagged = {pair: n for pair, n in candidates.items() if n >= factor * median}
    if not flagged:
        return []
    numbers = _card_numbers(card for _, card in flagged)
    rows = _rows(scope, tx.card_id.in_({card for _, card in flagged}), types=("stamp_add",))
    out = []
    for (name, card), n in flagged.items():
        group = [r for r in rows if r.staff_name == name and r.card_id == card]
        out.append(Signal(_key("favourite_card", scope, card, name), "favourite_card", name, group[0].created_at,
                          {"card_number": numbers.get(card, ""), "stamps": n, "median": _number(median)},
                          [r.id for r in group]))
    return out


def _number(value) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 1)


def _busy_hour(scope: _Scope) -> list[Signal]:
    from .stats import staff_rollup

    weeks = int(setting("STAFF_SIGNAL_HOUR_BASELINE_WEEKS"))
    since = scope.start - dt.timedelta(weeks=max(weeks, 1) - 1)
    minimum = int(setting("STAFF_SIGNAL_HOUR_MIN_ACTIONS"))
    if scope.staff is not None:  # one person: nothing to compare unless one of their hours reaches the minimum
        busiest = db.session.scalar(select(func.sum(staff_rollup.c.actions).label("n")).where(
            staff_rollup.c.program_id.in_(list(scope.programs)), staff_rollup.c.staff_name == scope.staff,
            staff_rollup.c.bucket >= scope.start, staff_rollup.c.bucket < scope.end)
            .group_by(staff_rollup.c.bucket).order_by(func.sum(staff_rollup.c.actions).desc()).limit(1))
        if not busiest or busiest < minimum:
            return []
    # The hours as epoch seconds, not timestamps: thousands of rows, and each distinct hour is converted to the
    # shop's weekday and hour once.
    per_hour = db.session.connection().execute(
        # Integers: PostgreSQL's extract and sum are numerics, and Decimals hash and convert slowly by the thousand.
        select(cast(_epoch(staff_rollup.c.bucket), BigInteger), staff_rollup.c.staff_name,
               cast(func.sum(staff_rollup.c.actions), BigInteger))
        .where(staff_rollup.c.program_id.in_(list(scope.programs)), staff_rollup.c.bucket >= since,
               staff_rollup.c.bucket < scope.end)
        .group_by(staff_rollup.c.bucket, staff_rollup.c.staff_name)).all()
    baseline: dict[tuple[int, int], list[int]] = defaultdict(list)
    mine = []
    slots: dict[float, tuple[int, int]] = {}
    week_start = scope.start.timestamp()
    for seconds, name, actions in per_hour:
        slot = slots.get(seconds)
        if slot is None:
            local = dt.datetime.fromtimestamp(float(seconds), scope.tz)
            slot = slots[seconds] = (local.weekday(), local.hour)
        actions = int(actions)
        if actions <= 0:
            continue
        baseline[slot].append(actions)
        if actions >= minimum and seconds >= week_start and (scope.staff is None or name == scope.staff):
            bucket = dt.datetime.fromtimestamp(float(seconds), clock.UTC)
            mine.append((bucket, name, actions, bucket.astimezone(scope.tz)))
    factor = float(setting("STAFF_SIGNAL_HOUR_FACTOR"))
    flagged = []
    for bucket, name, actions, local in mine:
        median = statistics.median(baseline[local.weekday(), local.hour])
        if actions >= factor * median:
            flagged.append((bucket, name, actions, local, median))
    if not flagged:
        return []
    tx = LoyaltyTransaction
    hours = _rows(scope, or_(*[and_(tx.staff_name == name, tx.created_at >= bucket,
                                    tx.created_at < bucket + dt.timedelta(hours=1))
                               for bucket, name, *_ in flagged]))
    out = []
    for bucket, name, actions, local, median in flagged:
        end = bucket + dt.timedelta(hours=1)
        ids = [r.id for r in hours if r.staff_name == name and bucket <= r.created_at < end]
        out.append(Signal(_key("busy_hour", scope, local.strftime("%Y-%m-%dT%H"), name), "busy_hour", name, bucket,
                          {"hour": local.strftime("%Y-%m-%d %H:00"), "actions": actions, "median": _number(median)},
                          ids))
    return out


def _out_of_hours(scope: _Scope) -> list[Signal]:
    hours = opening_hours(scope.vendor.id)
    if not hours:
        return []
    grace = dt.timedelta(minutes=int(setting("STAFF_SIGNAL_HOURS_GRACE_MINUTES")))
    closed, cursor = [], scope.start  # the week's closed intervals in UTC (the opening hours widened by the grace)
    for offset in range(7):
        day = scope.monday + dt.timedelta(days=offset)
        if day.weekday() in hours:
            opens, closes = hours[day.weekday()]
            midnight = dt.datetime.combine(day, dt.time(0), tzinfo=scope.tz)
            begin = (midnight + dt.timedelta(minutes=opens)).astimezone(clock.UTC) - grace
            finish = (midnight + dt.timedelta(minutes=closes)).astimezone(clock.UTC) + grace
            if begin > cursor:
                closed.append((cursor, begin))
            cursor = max(cursor, finish)
    if cursor < scope.end:
        closed.append((cursor, scope.end))
    if not closed:
        return []
    tx = LoyaltyTransaction
    groups: dict[tuple[str, dt.date], list] = defaultdict(list)
    for r in _rows(scope, or_(*[and_(tx.created_at >= a, tx.created_at < b) for a, b in closed])):
        groups[r.staff_name, scope.day_of(r.created_at)].append(r)
    out = []
    for (name, day), group in groups.items():
        opening = hours.get(day.weekday())
        out.append(Signal(
            _key("out_of_hours", scope, day.isoformat(), name), "out_of_hours", name, group[0].created_at,
            {"day": day.isoformat(), "actions": len(group),
             "hours": f"{format_minute(opening[0])}–{format_minute(opening[1])}" if opening else "",
             "first": scope.local(group[0].created_at).strftime("%H:%M"),
             "last": scope.local(group[-1].created_at).strftime("%H:%M")}, [r.id for r in group]))
    return out


def _burst(scope: _Scope) -> list[Signal]:
    cards_needed = max(int(setting("STAFF_SIGNAL_BURST_CARDS")), 2)
    span = dt.timedelta(seconds=int(setting("STAFF_SIGNAL_BURST_SECONDS")))
    tx = LoyaltyTransaction
    # In SQL first: the rows that end a run of ``cards_needed`` actions of one person within the span (a window
    # function over the scope's rows); N different cards need N actions, so only there is anything to look at.
    seconds = _epoch(tx.created_at)
    runs = select(tx.staff_name, tx.created_at, seconds.label("t"), func.lag(seconds, cards_needed - 1).over(
        partition_by=tx.staff_name, order_by=(tx.created_at, tx.id)).label("t0")).where(
        *_in_scope(scope, *EARN_TYPES)).subquery()
    ends = db.session.execute(select(runs.c.staff_name, runs.c.created_at).where(
        runs.c.t - runs.c.t0 <= span.total_seconds() + 1)).all()  # + 1: SQLite's epoch is whole seconds
    if not ends:
        return []
    windows = or_(*[and_(tx.staff_name == name, tx.created_at >= end - span - dt.timedelta(seconds=1),
                         tx.created_at <= end) for name, end in ends])
    by_staff: dict[str, list] = defaultdict(list)
    for r in _rows(scope, windows, types=EARN_TYPES):
        by_staff[r.staff_name].append(r)
    out = []
    for name, earns in by_staff.items():
        flagged = [False] * len(earns)
        first = 0
        window_cards: dict[int, int] = defaultdict(int)
        for i, r in enumerate(earns):
            window_cards[r.card_id] += 1
            while earns[first].created_at < r.created_at - span:
                old = earns[first].card_id
                window_cards[old] -= 1
                if not window_cards[old]:
                    del window_cards[old]
                first += 1
            if len(window_cards) >= cards_needed:
                for j in range(first, i + 1):
                    flagged[j] = True
        cluster: list = []
        for i, r in enumerate(earns + [None]):
            if r is not None and flagged[i] and (not cluster or r.created_at - cluster[-1].created_at <= span):
                cluster.append(r)
                continue
            if cluster:
                length = int((cluster[-1].created_at - cluster[0].created_at).total_seconds())
                out.append(Signal(_key("burst", scope, cluster[0].id, name), "burst", name, cluster[0].created_at,
                                  {"cards": len({c.card_id for c in cluster}), "actions": len(cluster),
                                   "seconds": length, "at": scope.local(cluster[0].created_at).strftime(
                                       "%Y-%m-%d %H:%M:%S")},
                                  [c.id for c in cluster]))
            cluster = [r] if r is not None and flagged[i] else []
    return out


def _quick_redeem(scope: _Scope) -> list[Signal]:
    window = dt.timedelta(seconds=int(setting("STAFF_SIGNAL_QUICK_REDEEM_SECONDS")))
    share = int(setting("STAFF_SIGNAL_QUICK_REDEEM_PERCENT")) / 100
    tx = LoyaltyTransaction
    # In SQL first: the redemptions whose previous action of the same person on the card (a window function over
    # the scope's rows) gave something within the window; the whole history of those few cards is checked below.
    seconds = _epoch(tx.created_at)
    order = {"partition_by": (tx.staff_name, tx.card_id), "order_by": tx.id}
    redeemed = select(tx.card_id).where(*_in_scope(scope, *REDEEM_TYPES))  # only the cards with a redemption
    steps = select(tx.id, tx.type, seconds.label("t"), func.lag(seconds).over(**order).label("t0"),
                   func.lag(tx.type).over(**order).label("type0")).where(
        tx.program_id.in_(list(scope.programs)),
        tx.staff_name == scope.staff if scope.staff is not None else tx.staff_name.is_not(None),
        tx.created_at >= scope.start - window, tx.created_at < scope.end, tx.type.in_(ACTION_TYPES),
        tx.card_id.in_(redeemed)).subquery()
    candidates = select(steps.c.id).where(steps.c.type.in_(REDEEM_TYPES), steps.c.type0.in_(EARN_TYPES),
                                          steps.c.t - steps.c.t0 <= window.total_seconds() + 1)
    redemptions = _rows(scope, tx.id.in_(candidates), types=REDEEM_TYPES)
    if not redemptions:
        return []
    cards = {r.card_id for r in redemptions}
    before = db.session.connection().execute(
        select(*_ROW_COLUMNS).where(tx.card_id.in_(cards), tx.created_at >= scope.start - window,
                                    tx.created_at < scope.end).order_by(tx.card_id, tx.id)).all()
    history: dict[int, list] = defaultdict(list)
    for r in before:
        history[r.card_id].append(r)
    out = []
    numbers = _card_numbers(cards)
    for r in redemptions:
        rows = [h for h in history[r.card_id] if h.id < r.id]
        earlier = []
        for h in reversed(rows):  # back from the redemption, while it is the same person giving within the window
            if h.staff_name != r.staff_name or h.type not in EARN_TYPES or r.created_at - h.created_at > window:
                break
            earlier.insert(0, h)
        given = sum(e.delta for e in earlier)
        if not earlier or given < share * abs(r.delta):
            continue
        program = scope.programs.get(r.program_id)
        unit = "stamps" if program is None or program.type == "stamps" else "points"
        length = int((r.created_at - earlier[-1].created_at).total_seconds())
        out.append(Signal(_key("quick_redeem", scope, r.id, r.staff_name), "quick_redeem", r.staff_name,
                          earlier[0].created_at,
                          {"card_number": numbers.get(r.card_id, ""), "given": given, "unit": unit,
                           "seconds": length}, [e.id for e in earlier] + [r.id]))
    return out


def compute(actor: Actor, week: str | None = None, staff: str | None = None) -> tuple[_Scope, list[Signal]]:
    """The signals of one ISO week (default: the current one), of one person or of every person, oldest first,
    each with its review if it has one. Owners and the shop's API keys only."""
    _owner(actor)
    scope = _scope(actor, week, staff)
    return scope, _compute(scope)


def _compute(scope: _Scope) -> list[Signal]:
    if not scope.programs:
        return []
    signals = _self_card(scope)
    signals += _favourite_card(scope, {(s.staff_name, int(s.key.split(":")[2])) for s in signals})
    signals += _busy_hour(scope)
    signals += _out_of_hours(scope)
    signals += _burst(scope)
    signals += _quick_redeem(scope)
    if signals:
        reviews = {r.signal_key: r for r in db.session.scalars(select(SignalReview).where(
            SignalReview.vendor_id == scope.vendor.id, SignalReview.signal_key.in_([s.key for s in signals])))}
        for s in signals:
            s.review = reviews.get(s.key)
    signals.sort(key=lambda s: (s.at, s.kind, s.key))
    return signals


def attach_transactions(signals: list[Signal]) -> None:
    """Load the transactions behind the signals (one query), with their card numbers, for links and the API."""
    ids = {i for s in signals for i in s.transaction_ids}
    if not ids:
        return
    tx = LoyaltyTransaction
    found = {row.id: row for row in db.session.execute(
        select(tx.id, tx.type, tx.delta, tx.created_at, tx.staff_name, LoyaltyCard.card_number)
        .join(LoyaltyCard, tx.card_id == LoyaltyCard.id).where(tx.id.in_(ids)))}
    for s in signals:
        s.transactions = [found[i] for i in s.transaction_ids if i in found]


def unreviewed_count(actor: Actor, weeks: int = 2) -> int:
    """Signals nobody marked reviewed, this week and the ``weeks - 1`` before it (the dashboard's badge)."""
    vendor = db.session.get(Vendor, actor.vendor_id)
    monday = parse_week(None, vendor.timezone)
    total = 0
    for back in range(weeks):
        _, signals = compute(actor, week_label(monday - dt.timedelta(weeks=back)))
        total += sum(1 for s in signals if s.review is None)
    return total


# --- The Staff view -----------------------------------------------------------------------------------------------

def people(actor: Actor, week: str | None = None, *, computed: tuple | None = None) -> tuple[_Scope, list[dict]]:
    """Every person with actions in the week: actions, and signals (all / not reviewed). ``computed``: the
    ``compute(actor, week)`` result when the caller has it already."""
    _owner(actor)
    scope, signals = computed or compute(actor, week)
    from .stats import staff_rollup

    actions: dict[str, int] = {}
    if scope.programs:
        for name, count in db.session.execute(
                select(staff_rollup.c.staff_name, func.sum(staff_rollup.c.actions))
                .where(staff_rollup.c.program_id.in_(list(scope.programs)), staff_rollup.c.bucket >= scope.start,
                       staff_rollup.c.bucket < scope.end).group_by(staff_rollup.c.staff_name)):
            actions[name] = int(count)
    out = []
    for name in sorted(set(actions) | {s.staff_name for s in signals}, key=str.casefold):
        mine = [s for s in signals if s.staff_name == name]
        out.append({"staff_name": name, "actions": actions.get(name, 0), "signals": len(mine),
                    "unreviewed": sum(1 for s in mine if s.review is None)})
    return scope, out


def person(actor: Actor, staff: str, week: str | None = None) -> dict:
    """One person's week: actions per day, refusals at the logins and API keys they worked through (a wrong PIN
    names nobody), and their signals with the transactions behind them."""
    _owner(actor)
    staff = (staff or "").strip()
    if not staff:
        raise NotFound()
    scope = _scope(actor, week, staff)
    signals = _compute(scope)
    attach_transactions(signals)
    days = []
    for offset in range(7):
        day = scope.monday + dt.timedelta(days=offset)
        days.append({"day": day.isoformat(), "stamps": 0, "points": 0, "redemptions": 0, "actions": 0,
                     "refusals": 0})
    clients: set[str] = set()
    if scope.programs:
        tx = LoyaltyTransaction
        scope.day_of(scope.start)  # the days' bounds
        day_index = literal(0)
        for bound in scope._midnights:
            day_index = day_index + case((tx.created_at >= bound, 1), else_=0)
        day_index = day_index.label("day")
        # One pass: per day and kind, and the logins and API keys the person worked through (their refusals).
        for index, kind, user_id, api_key_id, count, total in db.session.execute(
                select(day_index, tx.type, tx.user_id, tx.api_key_id, func.count(), func.sum(tx.delta))
                .where(*_in_scope(scope)).group_by(day_index, tx.type, tx.user_id, tx.api_key_id)):
            entry = days[int(index)]
            entry["actions"] += int(count)
            if kind == "stamp_add":
                entry["stamps"] += int(total)
            elif kind == "points_earn":
                entry["points"] += int(total)
            else:
                entry["redemptions"] += int(count)
            if user_id is not None:
                clients.add(f"user:{user_id}")
            if api_key_id is not None:
                clients.add(f"apikey:{api_key_id}")
    refusals: dict[str, int] = {}
    if clients:
        for created_at, code in db.session.execute(
                select(Refusal.created_at, Refusal.code).where(
                    Refusal.program_id.in_(list(scope.programs)), Refusal.client_key.in_(clients),
                    Refusal.created_at >= scope.start, Refusal.created_at < scope.end)):
            refusals[code] = refusals.get(code, 0) + 1
            days[(scope.day_of(created_at) - scope.monday).days]["refusals"] += 1
    totals = {k: sum(d[k] for d in days) for k in ("stamps", "points", "redemptions", "actions", "refusals")}
    if not totals["actions"] and not signals and not _known(scope, staff):
        raise NotFound()
    return {"scope": scope, "staff_name": staff, "days": days, "refusals": refusals, "signals": signals,
            "totals": totals}


def _known(scope: _Scope, staff: str) -> bool:
    """Whether ``staff`` names anybody of this shop: a PIN, or a ledger row at any time."""
    if not scope.programs:
        return False
    ids = list(scope.programs)
    if db.session.scalar(select(StaffPin.id).where(StaffPin.program_id.in_(ids), StaffPin.staff_name == staff)
                         .limit(1)) is not None:
        return True
    return db.session.scalar(select(LoyaltyTransaction.id).where(LoyaltyTransaction.program_id.in_(ids),
                                                                 LoyaltyTransaction.staff_name == staff)
                             .limit(1)) is not None


# --- Reviews ------------------------------------------------------------------------------------------------------

KEY_RE = re.compile(r"^(?P<kind>[a-z_]+):(?P<week>\d{4}-W\d{2}):(?P<subject>[^:]+):(?P<staff>.+)$")


def review(actor: Actor, data: dict, reviewer: str) -> SignalReview:
    """Mark a signal reviewed with a note. The signal must be one the shop has now (computed again here); a
    second review of the same signal is refused (the first stays: it is the audit)."""
    _owner(actor)
    f = Fields(data)
    key = f.string("key", required=True, max_length=300)
    note = f.string("note", max_length=1000, default="") or ""
    f.done()
    match = KEY_RE.match(key)
    if match is None or match.group("kind") not in KINDS:
        raise NotFound(_l("No such signal."))
    _, signals = compute(actor, match.group("week"), match.group("staff"))
    signal = next((s for s in signals if s.key == key), None)
    if signal is None:
        raise NotFound(_l("No such signal."))
    if signal.review is not None:
        raise Conflict(_l("This signal was already marked reviewed."))
    row = SignalReview(vendor_id=actor.vendor_id, signal_key=key, kind=signal.kind, staff_name=signal.staff_name,
                       note=note, user_id=actor.user_id, api_key_id=actor.api_key_id,
                       reviewed_by=reviewer or actor.name or "", reviewed_at=clock.now())
    db.session.add(row)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except Exception as exc:  # a concurrent review of the same signal
        from sqlalchemy.exc import IntegrityError

        if isinstance(exc, IntegrityError):
            raise Conflict(_l("This signal was already marked reviewed.")) from None
        raise
    return row


def signal_to_dict(s: Signal) -> dict:
    return {
        "key": s.key, "kind": s.kind, "staff_name": s.staff_name, "at": s.at.isoformat(),
        "explanation": s.explanation, "figures": {k: v for k, v in s.figures.items()},
        "transaction_ids": list(s.transaction_ids),
        "transactions": [{"id": t.id, "type": t.type, "delta": t.delta, "card_number": t.card_number,
                          "created_at": t.created_at.isoformat(), "staff_name": t.staff_name}
                         for t in s.transactions],
        "review": None if s.review is None else review_to_dict(s.review),
    }


def review_to_dict(r: SignalReview) -> dict:
    return {"note": r.note, "reviewed_by": r.reviewed_by, "reviewed_at": r.reviewed_at.isoformat()}

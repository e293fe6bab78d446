"""The one clock. Every rule that depends on time reads it here, so tests can move time instead of sleeping."""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from contextvars import ContextVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.timezone.utc


_pinned: ContextVar[dt.datetime | None] = ContextVar("pinned_now", default=None)


def now() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    pinned = _pinned.get()
    return pinned if pinned is not None else dt.datetime.now(UTC)


@contextmanager
def pinned(moment: dt.datetime):
    """Make ``now()`` return ``moment`` inside the block (demo history; tests use time-machine instead)."""
    token = _pinned.set(moment)
    try:
        yield
    finally:
        _pinned.reset(token)


def zone(name: str | None) -> dt.tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_day_bounds(moment: dt.datetime, tz_name: str | None) -> tuple[dt.datetime, dt.datetime]:
    """The start and end (UTC) of the calendar day containing ``moment`` in the given timezone.

    Computed from local midnights, so 23- and 25-hour days around daylight-saving changes are right.
    """
    tz = zone(tz_name)
    local = moment.astimezone(tz)
    start_local = dt.datetime.combine(local.date(), dt.time(0), tzinfo=tz)
    end_local = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start_local.astimezone(UTC), end_local.astimezone(UTC)


def seconds_until(moment: dt.datetime, reference: dt.datetime | None = None) -> int:
    """Whole seconds (rounded up, at least 1) from ``reference`` (default now) until ``moment``."""
    reference = reference or now()
    delta = (moment - reference).total_seconds()
    return max(1, int(-(-delta // 1)))

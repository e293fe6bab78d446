"""The dashboard's rollups (migration perf01, triggers) give exactly the live aggregates over the ledger.

``stats.vendor_stats`` reads the rollup tables; ``stats.vendor_stats_live`` aggregates the ledger itself. Random
operations at random moments (both sides of midnight, a DST change, a 45-minute time zone), voids, adjustments,
refusals and the demo's ledger deletion must leave them equal for every window and program filter.
"""
from __future__ import annotations

import datetime as dt
import random

import pytest
from support import IS_PG, rewards_of
import time_machine
from sqlalchemy import create_engine, func, select, text, update

from portal.extensions import db
from portal.services import ledger_admin, operations, stats
from portal.services.errors import DomainError

UTC = dt.timezone.utc


def _compare(actor, program_ids):
    for days in (1, 2, 7, 30, 90, 365):
        for program_id in [None, *program_ids]:
            fast = stats.vendor_stats(actor, days, program_id)
            live = stats.vendor_stats_live(actor, days, program_id)
            # top_staff: the live query orders ties arbitrarily; compare the counts and each name's count
            fast_top, live_top = fast.pop("top_staff"), live.pop("top_staff")
            assert [s["actions"] for s in fast_top] == [s["actions"] for s in live_top], (days, program_id)
            assert fast == live, (days, program_id)
            db.session.commit()  # keep the days vendor_stats cached: the next windows read them


def _top_staff_equal(actor, days):
    fast = stats.vendor_stats(actor, days)["top_staff"]
    live = stats.vendor_stats_live(actor, days)["top_staff"]
    assert [s["actions"] for s in fast] == [s["actions"] for s in live]
    counts = {s["staff_name"]: s["actions"] for s in live}
    for s in fast:  # a name in the fast top 5 has the same count live (or ties just outside the live top 5)
        assert counts.get(s["staff_name"], s["actions"]) == s["actions"]


def _random_operation(rng, actor, card, stamps, points, pins, tx_ids):
    """One stamp, redemption, adjustment, earn, reward or void on ``card`` at the current (travelled) time."""
    try:
        if card.program_id == stamps.id:
            if (action := rng.random()) < 0.7:
                body = {"count": rng.randint(1, 2)}
                if rng.random() < 0.6:
                    body["staff_pin"] = rng.choice(pins).plain_pin
                _, tx = operations.add_stamps(actor, card.card_number, body)
            elif action < 0.85:
                _, tx = operations.redeem_stamps(actor, card.card_number, {})
            else:
                _, tx = operations.adjust(actor, card.card_number, {"delta": 1, "reason": "fix"})
        else:
            if (action := rng.random()) < 0.7:
                _, tx = operations.earn_points(actor, card.card_number, {"amount": f"{rng.randint(1, 60)}.50"})
            elif action < 0.85:
                _, tx = operations.redeem_points(actor, card.card_number, {"reward_id": rewards_of(points)[0].id})
            else:
                tx = None
                if tx_ids:
                    _, tx = operations.void_transaction(actor, rng.choice(tx_ids), {"reason": "mistake"})
        if tx is not None:
            tx_ids.append(tx.id)
        db.session.commit()
    except DomainError as error:
        if error.keep_changes:
            db.session.commit()
        else:
            db.session.rollback()


def _cached_days() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(stats.day_rollup))


@pytest.mark.parametrize("timezone", ["Europe/Luxembourg", "Asia/Kathmandu", "America/St_Johns"])
def test_rollups_equal_live_aggregates(app, factories, timezone):
    rng = random.Random(20261124)
    vendor = factories.vendor(timezone=timezone)
    actor = factories.owner_actor(vendor)
    stamps = factories.program(vendor, require_pin=False, cooldown_minutes=0, daily_stamp_limit=3)
    points = factories.program(vendor, type="points")
    pins = [factories.pin(stamps, f"{1000 + i}", f"Staff {i}") for i in range(3)]
    start = dt.datetime(2026, 3, 20, 21, 50, tzinfo=UTC)  # across the DST change of 29 March in Europe
    moments = sorted(start + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 20)) for _ in range(120))
    cards = []
    tx_ids = []
    with time_machine.travel(start, tick=False) as traveller:
        for _ in range(6):
            cards.append(factories.card(stamps))
            cards.append(factories.card(points))
        for moment in moments:
            traveller.move_to(moment)
            _random_operation(rng, actor, rng.choice(cards), stamps, points, pins, tx_ids)
            if rng.random() < 0.05:
                cards.append(factories.card(rng.choice([stamps, points])))
        assert db.session.scalar(select(func.count()).select_from(stats.tx_rollup)) > 0
        end = moments[-1] + dt.timedelta(hours=5, minutes=7, seconds=13)
        traveller.move_to(end)
        _compare(actor, [stamps.id, points.id])
        _top_staff_equal(actor, 30)
        # The comparisons filled the day cache (they commit). Rows added now inside cached days — stamps, voids,
        # enrolments at earlier moments — must drop those days from it, so the figures stay exact.
        cached = _cached_days()
        assert cached >= 2 * 19, "the closed days of the window are cached"
        for moment in sorted(rng.sample(moments, 25)):
            traveller.move_to(moment + dt.timedelta(minutes=rng.randrange(1, 30)))
            _random_operation(rng, actor, rng.choice(cards), stamps, points, pins, tx_ids)
            if rng.random() < 0.2:
                cards.append(factories.card(rng.choice([stamps, points])))
        traveller.move_to(end)
        assert _cached_days() < cached, "ledger rows inside cached days invalidated them"
        _compare(actor, [stamps.id, points.id])
        _top_staff_equal(actor, 30)
        # The demo's sanctioned ledger deletion keeps the rollups and the day cache exact too (delete triggers).
        assert _cached_days() >= cached
        ledger_admin.delete_ledger_rows([cards[0].id, cards[1].id])
        db.session.commit()
        _compare(actor, [stamps.id, points.id])


def _compare_now(actor, days=7):
    fast, live = stats.vendor_stats(actor, days), stats.vendor_stats_live(actor, days)
    db.session.commit()  # keep what the fast path cached
    assert fast == live
    return fast


def test_day_cache_is_read_and_invalidated(app, factories):
    """The closed days come from the day cache (a poisoned cached value shows), and a ledger row or a card
    inserted or deleted inside a cached day drops that day (its staff rows with it) and nothing else."""
    vendor = factories.vendor(timezone="Europe/Luxembourg")
    actor = factories.owner_actor(vendor)
    program = factories.program(vendor, require_pin=False, cooldown_minutes=0, daily_stamp_limit=0)
    pin = factories.pin(program, "2468", "Mia")
    now = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    days = [now - dt.timedelta(days=n, hours=2) for n in range(1, 7)]  # inside each of the 6 closed days
    with time_machine.travel(days[-1], tick=False) as traveller:
        card = factories.card(program)
        for moment in reversed(days):
            traveller.move_to(moment)
            operations.add_stamps(actor, card.card_number, {"count": 2, "staff_pin": pin.plain_pin})
            db.session.commit()
        # Half an hour after local midnight yesterday has ended, but less than CACHE_SETTLE ago: not cached yet.
        traveller.move_to(dt.datetime(2026, 3, 9, 23, 30, tzinfo=UTC))
        assert _cached_days() == 0
        _compare_now(actor)
        assert _cached_days() == 5
        traveller.move_to(now)
        figures = _compare_now(actor)
        assert _cached_days() == 6, "days 1-6 of the 7-day window are closed; today is not cached"
        assert figures["totals"]["stamps_issued"] == 12
        assert figures["top_staff"] == [{"staff_name": "Mia", "actions": 6}]

        # Poison the cached rows of 4 days ago: the read path must show it (it reads the cache, not the rollups).
        day_start, _ = stats.clock.local_day_bounds(days[3], vendor.timezone)
        d, s = stats.day_rollup.c, stats.staff_day_rollup.c
        db.session.execute(update(stats.day_rollup).where(d.program_id == program.id, d.day_start == day_start)
                           .values(stamps=d.stamps + 1000))
        db.session.execute(update(stats.staff_day_rollup).where(s.program_id == program.id, s.day_start == day_start)
                           .values(actions=s.actions + 50))
        db.session.commit()
        poisoned = stats.vendor_stats(actor, 7)
        db.session.rollback()
        assert poisoned["totals"]["stamps_issued"] == 1012
        assert poisoned["daily"]["stamps"][2] == 1002  # the window's third day
        assert poisoned["top_staff"] == [{"staff_name": "Mia", "actions": 56}]

        # A stamp given inside that day (clock moved back) drops exactly that cached day, poison included.
        traveller.move_to(days[3] + dt.timedelta(minutes=5))
        operations.add_stamps(actor, card.card_number, {"count": 1})
        db.session.commit()
        traveller.move_to(now)
        assert _cached_days() == 5
        assert db.session.scalar(select(func.count()).select_from(stats.staff_day_rollup)) == 5
        assert _compare_now(actor)["totals"]["stamps_issued"] == 13
        assert _cached_days() == 6

        # An enrolment inside a cached day, then the demo's ledger deletion (every cached day has rows): dropped.
        traveller.move_to(days[1])
        factories.card(program)
        traveller.move_to(now)
        assert _cached_days() == 5
        assert _compare_now(actor)["daily"]["enrolments"][4] == 1
        ledger_admin.delete_ledger_rows([card.id])
        db.session.commit()
        assert _cached_days() == 0
        assert _compare_now(actor)["totals"]["stamps_issued"] == 0


@pytest.mark.skipif(IS_PG, reason="SQLite's read transactions")
def test_day_cache_fill_skipped_when_sqlite_refuses_the_write(app, factories, database_url):
    """A GET runs in a DEFERRED transaction: when another connection wrote since it began, SQLite refuses its
    write at once ("database is locked"). The fill is then skipped; the figures are exact all the same."""
    vendor = factories.vendor(timezone="Europe/Luxembourg")
    actor = factories.owner_actor(vendor)
    program = factories.program(vendor, require_pin=False, cooldown_minutes=0, daily_stamp_limit=0)
    now = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    with time_machine.travel(now - dt.timedelta(days=3), tick=False) as traveller:
        card = factories.card(program)
        operations.add_stamps(actor, card.card_number, {"count": 3})
        db.session.commit()
        traveller.move_to(now)
        db.session.scalar(select(func.count()).select_from(stats.tx_rollup))  # the read snapshot starts here
        other = create_engine(database_url)
        with other.begin() as conn:
            conn.execute(text("UPDATE vendors SET name = 'Renamed' WHERE id = :id"), {"id": vendor.id})
        other.dispose()
        fast = stats.vendor_stats(actor, 7)
        db.session.commit()
        assert _cached_days() == 0, "the fill was refused and skipped"
        assert fast == stats.vendor_stats_live(actor, 7)
        assert fast["totals"]["stamps_issued"] == 3
        _compare_now(actor)
        assert _cached_days() == 6, "the next request fills it"


def test_rollup_window_edges(app, factories):
    """Transactions a second either side of the window's start and of local midnights."""
    vendor = factories.vendor(timezone="Europe/Luxembourg")
    actor = factories.owner_actor(vendor)
    program = factories.program(vendor, require_pin=False, cooldown_minutes=0, daily_stamp_limit=0)
    card = factories.card(program)
    now = dt.datetime(2026, 10, 25, 12, 7, 31, 250000, tzinfo=UTC)  # the day Europe leaves summer time
    edges = [now - dt.timedelta(days=30) + dt.timedelta(seconds=s) for s in (-1, 0, 1)]
    edges += [dt.datetime(2026, 10, 24, 22, 0, tzinfo=UTC) + dt.timedelta(seconds=s) for s in (-1, 0, 1)]
    edges += [dt.datetime(2026, 10, 25, 23, 0, tzinfo=UTC) + dt.timedelta(microseconds=s) for s in (-1, 0)]
    for moment in edges:
        with time_machine.travel(moment, tick=False):
            operations.add_stamps(actor, card.card_number, {"count": 1})
            db.session.commit()
    with time_machine.travel(now, tick=False):
        for days in (1, 2, 29, 30, 31):
            assert stats.vendor_stats(actor, days) == stats.vendor_stats_live(actor, days)
            db.session.rollback()


def test_one_staff_name_spreads_over_shards(app, factories):
    """Stamps given under one name in one hour (an API key, a shared login) land on up to four staff-rollup rows,
    by card (migration perf05): concurrent stamps of a shop do not queue on one row's lock until commit."""
    vendor = factories.vendor()
    actor = factories.owner_actor(vendor)
    program = factories.program(vendor, require_pin=False, cooldown_minutes=0, daily_stamp_limit=0)
    cards = [factories.card(program) for _ in range(8)]
    with time_machine.travel(dt.datetime(2026, 11, 2, 10, 20, tzinfo=UTC), tick=False):
        for card in cards:
            operations.add_stamps(actor, card.card_number, {"count": 1})
        db.session.commit()
    s_ = stats.staff_rollup.c
    rows = db.session.execute(select(s_.shard, s_.actions).where(s_.program_id == program.id)).all()
    assert sorted(shard for shard, _ in rows) == sorted({card.id % 4 for card in cards})
    assert len(rows) == 4 and sum(actions for _, actions in rows) == 8
    with time_machine.travel(dt.datetime(2026, 11, 2, 12, 0, tzinfo=UTC), tick=False):
        top = stats.vendor_stats(actor, 1)["top_staff"]
        assert top == stats.vendor_stats_live(actor, 1)["top_staff"] and top[0]["actions"] == 8

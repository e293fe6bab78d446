"""The dashboard's rollups (migration perf01, triggers) give exactly the live aggregates over the ledger.

``stats.vendor_stats`` reads the rollup tables; ``stats.vendor_stats_live`` aggregates the ledger itself. Random
operations at random moments (both sides of midnight, a DST change, a 45-minute time zone), voids, adjustments,
refusals and the demo's ledger deletion must leave them equal for every window and program filter.
"""
from __future__ import annotations

import datetime as dt
import random

import pytest
import time_machine
from sqlalchemy import func, select

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
            db.session.rollback()


def _top_staff_equal(actor, days):
    fast = stats.vendor_stats(actor, days)["top_staff"]
    live = stats.vendor_stats_live(actor, days)["top_staff"]
    assert [s["actions"] for s in fast] == [s["actions"] for s in live]
    counts = {s["staff_name"]: s["actions"] for s in live}
    for s in fast:  # a name in the fast top 5 has the same count live (or ties just outside the live top 5)
        assert counts.get(s["staff_name"], s["actions"]) == s["actions"]


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
            card = rng.choice(cards)
            action = rng.random()
            try:
                if card.program_id == stamps.id:
                    if action < 0.7:
                        body = {"count": rng.randint(1, 2)}
                        if rng.random() < 0.6:
                            body["staff_pin"] = rng.choice(pins).plain_pin
                        _, tx = operations.add_stamps(actor, card.card_number, body)
                    elif action < 0.85:
                        _, tx = operations.redeem_stamps(actor, card.card_number, {})
                    else:
                        _, tx = operations.adjust(actor, card.card_number, {"delta": 1, "reason": "fix"})
                else:
                    if action < 0.7:
                        _, tx = operations.earn_points(actor, card.card_number,
                                                       {"amount": f"{rng.randint(1, 60)}.50"})
                    elif action < 0.85:
                        _, tx = operations.redeem_points(actor, card.card_number,
                                                         {"reward_id": points.rewards[0].id})
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
            if rng.random() < 0.05:
                cards.append(factories.card(rng.choice([stamps, points])))
        assert db.session.scalar(select(func.count()).select_from(stats.tx_rollup)) > 0
        traveller.move_to(moments[-1] + dt.timedelta(hours=5, minutes=7, seconds=13))
        _compare(actor, [stamps.id, points.id])
        _top_staff_equal(actor, 30)
        # The demo's sanctioned ledger deletion keeps the rollups exact too (delete triggers).
        ledger_admin.delete_ledger_rows([cards[0].id, cards[1].id])
        db.session.commit()
        _compare(actor, [stamps.id, points.id])


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

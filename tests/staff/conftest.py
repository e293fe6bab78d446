"""A shop with planted staff patterns and a clean shop (issue 17), built through the real services with the clock
moved by time-machine."""
from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
import time_machine

from portal.extensions import db
from portal.services import accounts, operations, staff_signals
from portal.services.actor import Actor

LUX = ZoneInfo("Europe/Luxembourg")
WEEK = "2026-W47"  # Monday 16 November 2026 to Sunday 22 November
MONDAY = dt.date(2026, 11, 16)
_rand = random.SystemRandom()


def at(day_offset: int, hour: int, minute: int = 0, second: int = 0, monday: dt.date = MONDAY) -> dt.datetime:
    """A local time in the week of ``monday`` (day_offset 0 = Monday), as aware UTC."""
    day = monday + dt.timedelta(days=day_offset)
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=LUX).astimezone(dt.timezone.utc)


class Till:
    """Stamps and redeems at given moments, through ``operations`` as the tablet would, with a staff PIN."""

    def __init__(self, owner_actor: Actor):
        self.actor = owner_actor
        self.ids: dict[str, list[int]] = {}

    def _do(self, moment, fn, card, data, tag):
        with time_machine.travel(moment, tick=False):
            _, tx = fn(self.actor, card.card_number, data)
            db.session.commit()
        if tag:
            self.ids.setdefault(tag, []).append(tx.id)
        return tx

    def stamp(self, moment, card, pin, count=1, tag=None):
        return self._do(moment, operations.add_stamps, card, {"count": count, "staff_pin": pin.plain_pin}, tag)

    def redeem(self, moment, card, pin, tag=None):
        return self._do(moment, operations.redeem_stamps, card, {"staff_pin": pin.plain_pin}, tag)


def _pin(factories, program, name):
    return factories.pin(program, f"{_rand.randrange(10_000, 99_999_999)}", name)


def _hours(vendor):
    actor = Actor(vendor_id=vendor.id, role="owner", name="owner")
    staff_signals.set_opening_hours(actor, {**{f"opens_{d}": "08:00" for d in range(6)},
                                            **{f"closes_{d}": "18:00" for d in range(6)}})
    db.session.commit()


@pytest.fixture
def planted(factories):
    """Every pattern of issue 17 planted once, in week 2026-W47; ``till.ids`` names the transactions of each."""
    vendor = factories.vendor("Planted Café")
    program = factories.program(vendor, name="Coffee", require_pin=True, cooldown_minutes=0, daily_stamp_limit=0,
                                stamps_required=10)
    owner = factories.owner_actor(vendor)
    till = Till(owner)
    _hours(vendor)
    anna_login = factories.user(vendor, email=f"anna-{_rand.randrange(10**9)}@shop.test")
    anna = _pin(factories, program, "Anna")
    anna.user_id = anna_login.id
    db.session.commit()
    bob, carl, dave, eve, frank = (_pin(factories, program, n) for n in ("Bob", "Carl", "Dave", "Eve", "Frank"))

    # Self-stamping: Anna stamps the card that carries her own login's e-mail (upper case: compared normalised).
    own = factories.card(program, email=anna_login.email.upper())
    for day, hour in ((1, 9), (1, 12), (2, 15)):
        till.stamp(at(day, hour), own, anna, tag="self_card")
    # A favourite card: Bob stamps one friend's card 12 times in the week (twice a day, Monday to Saturday).
    friend = factories.card(program)
    for day in range(6):
        till.stamp(at(day, 11), friend, bob, tag="favourite_card")
        till.stamp(at(day, 16), friend, bob, tag="favourite_card")
    # An outlier shift: on Wednesday 10:00–11:00 Carl stamps 30 cards, one every 100 s (no burst); Bob's usual
    # two stamps at that weekday and hour, this week and the three before, are the shop's median.
    for week_back in range(4):
        monday = MONDAY - dt.timedelta(weeks=week_back)
        for minute in (10, 40):
            till.stamp(at(2, 10, minute, monday=monday), factories.card(program), bob)
    for i in range(30):
        till.stamp(at(2, 10, 0, 5) + dt.timedelta(seconds=100 * i), factories.card(program), carl, tag="busy_hour")
    # A burst: Dave stamps 6 different cards within 40 seconds on Thursday afternoon.
    for i in range(6):
        till.stamp(at(3, 14, 0, 0) + dt.timedelta(seconds=8 * i), factories.card(program), dave, tag="burst")
    # Out-of-hours redemptions: Eve redeems two full cards on Saturday night (the cards were filled a week before).
    full = [factories.card(program) for _ in range(2)]
    for card in full:
        till.stamp(at(0, 9, monday=MONDAY - dt.timedelta(weeks=1)), card, bob, count=10)
    till.redeem(at(5, 22, 30), full[0], eve, tag="out_of_hours")
    till.redeem(at(5, 22, 40), full[1], eve, tag="out_of_hours")
    # A redemption right after the stamps that completed it: Frank gives 9 stamps and redeems 40 s later.
    quick = factories.card(program)
    till.stamp(at(0, 9, monday=MONDAY - dt.timedelta(weeks=1)), quick, bob)
    till.stamp(at(4, 15, 0, 0), quick, frank, count=9, tag="quick_redeem")
    till.redeem(at(4, 15, 0, 40), quick, frank, tag="quick_redeem")
    return vendor, owner, till


@pytest.fixture
def clean(factories):
    """A shop with ordinary staff work in week 2026-W47: no signal may be raised."""
    vendor = factories.vendor("Clean Bakery")
    program = factories.program(vendor, name="Bread", require_pin=True, cooldown_minutes=0, daily_stamp_limit=0,
                                stamps_required=10)
    owner = factories.owner_actor(vendor)
    till = Till(owner)
    _hours(vendor)
    gina_login = factories.user(vendor, email=f"gina-{_rand.randrange(10**9)}@shop.test")
    gina = _pin(factories, program, "Gina")
    gina.user_id = gina_login.id
    db.session.commit()
    hugo = _pin(factories, program, "Hugo")
    regulars = [factories.card(program) for _ in range(12)]
    for day in range(6):
        for slot, card in enumerate(regulars[day * 2:day * 2 + 2] + regulars[:2]):
            staff = gina if slot % 2 else hugo
            till.stamp(at(day, 8 + slot * 2, 15), card, staff)
    # The normal tenth coffee: one stamp completes the card, redeemed a minute later by the same person.
    tenth = factories.card(program)
    till.stamp(at(0, 9, monday=MONDAY - dt.timedelta(weeks=1)), tenth, hugo, count=9)
    till.stamp(at(2, 10, 0), tenth, gina)
    till.redeem(at(2, 10, 1), tenth, gina)
    # Four quick stamps on four cards within a minute at a busy moment: below the burst's five.
    for i in range(4):
        till.stamp(at(3, 12, 0, 10 * i), factories.card(program), hugo)
    return vendor, owner, till

"""Issue 17: every planted pattern is flagged with exactly its transactions; the clean shop raises nothing."""
from __future__ import annotations

import time_machine

from portal.extensions import db
from portal.services import staff_signals

from .conftest import WEEK, at

LATER = at(9, 12)  # the Wednesday after the week


def _signals(owner, staff=None):
    with time_machine.travel(LATER, tick=False):
        _, signals = staff_signals.compute(owner, WEEK, staff)
    return signals


def test_every_planted_pattern_is_flagged_with_its_transactions(planted):
    vendor, owner, till = planted
    signals = _signals(owner)
    by_kind = {}
    for s in signals:
        by_kind.setdefault(s.kind, []).append(s)
    assert sorted(by_kind) == sorted(staff_signals.KINDS), [(s.kind, s.staff_name, s.figures) for s in signals]
    assert all(len(found) == 1 for found in by_kind.values()), [(s.kind, s.staff_name) for s in signals]
    expected_staff = {"self_card": "Anna", "favourite_card": "Bob", "busy_hour": "Carl", "burst": "Dave",
                      "out_of_hours": "Eve", "quick_redeem": "Frank"}
    for kind, (signal,) in by_kind.items():
        assert signal.staff_name == expected_staff[kind]
        assert sorted(signal.transaction_ids) == sorted(till.ids[kind]), kind
        assert signal.review is None
    assert by_kind["self_card"][0].figures["actions"] == 3
    assert by_kind["favourite_card"][0].figures == {"card_number": by_kind["favourite_card"][0].figures["card_number"],
                                                    "stamps": 12, "median": 1}
    assert by_kind["busy_hour"][0].figures["actions"] == 30
    assert by_kind["busy_hour"][0].figures["median"] == 2
    assert by_kind["busy_hour"][0].figures["hour"] == "2026-11-18 10:00"
    assert by_kind["burst"][0].figures["cards"] == 6 and by_kind["burst"][0].figures["seconds"] == 40
    assert by_kind["out_of_hours"][0].figures["day"] == "2026-11-21"
    assert by_kind["out_of_hours"][0].figures["first"] == "22:30"
    assert by_kind["quick_redeem"][0].figures["seconds"] == 40
    assert "Anna" in by_kind["self_card"][0].explanation


def test_one_persons_view_shows_only_their_signals(planted):
    vendor, owner, till = planted
    (signal,) = _signals(owner, "Carl")
    assert signal.kind == "busy_hour"
    assert _signals(owner, "Nobody") == []


def test_the_clean_shop_raises_no_signal(clean):
    vendor, owner, till = clean
    assert _signals(owner) == []


def test_thresholds_are_settings(planted, app):
    vendor, owner, till = planted
    app.config["STAFF_SIGNAL_BURST_CARDS"] = 7
    app.config["STAFF_SIGNAL_FAVOURITE_MIN_STAMPS"] = 13
    kinds = {s.kind for s in _signals(owner)}
    assert "burst" not in kinds and "favourite_card" not in kinds and "busy_hour" in kinds


def test_out_of_hours_is_off_without_opening_hours(planted):
    vendor, owner, till = planted
    staff_signals.set_opening_hours(owner, {})
    db.session.commit()
    assert "out_of_hours" not in {s.kind for s in _signals(owner)}


def test_another_week_has_none_of_them(planted):
    vendor, owner, till = planted
    with time_machine.travel(LATER, tick=False):
        _, signals = staff_signals.compute(owner, "2026-W48")
    assert signals == []

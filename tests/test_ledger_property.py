"""Hypothesis: random sequences of operations (stamp, redeem, earn, spend, void, adjust, wrong PINs, time passing)
keep every card's balance equal to the sum of its ledger, never negative, with an intact hash chain."""
from __future__ import annotations

import datetime as dt

import time_machine
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from portal.storage import run_unit as run_in_transaction
from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction
from portal.services import ledger, operations
from portal.services.actor import Actor
from portal.services.errors import DomainError
from support import rewards_of

START = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.timezone.utc)


def ledger_machine(shop_factory):
    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def setup(self):
            self.shop = shop_factory()
            self.actor = Actor(vendor_id=self.shop.vendor.id, role="owner", user_id=self.shop.vendor.owner.id,
                               name="owner")
            self.traveller = time_machine.travel(START, tick=False)
            self.clock = self.traveller.start()
            self.expected_stamps = 0
            self.expected_points = 0
            self.tx_ids: list[int] = []

        def teardown(self):
            if hasattr(self, "traveller"):
                self.traveller.stop()

        def _do(self, fn, *args, **kwargs):
            try:
                card, tx = run_in_transaction(lambda: fn(self.actor, *args, **kwargs))
            except DomainError as error:
                return error
            self.tx_ids.append(tx.id)
            return tx

        @rule(count=st.integers(min_value=1, max_value=6))
        def stamp(self, count):
            result = self._do(operations.add_stamps, self.shop.stamp_card.card_number,
                              {"count": count, "staff_pin": "4321"})
            if not isinstance(result, DomainError):
                self.expected_stamps += count
            else:
                assert result.code in ("cooldown_active", "daily_limit_reached")

        @rule()
        def redeem_stamps(self):
            result = self._do(operations.redeem_stamps, self.shop.stamp_card.card_number, {"staff_pin": "4321"})
            if isinstance(result, DomainError):
                assert result.code == "insufficient_balance" and self.expected_stamps < 3
            else:
                self.expected_stamps -= 3

        @rule(amount=st.decimals(min_value="0.01", max_value="500", places=2))
        def earn(self, amount):
            result = self._do(operations.earn_points, self.shop.points_card.card_number, {"amount": str(amount)})
            if not isinstance(result, DomainError):
                self.expected_points += result.delta
            else:
                assert result.code == "validation_error" and amount < 1

        @rule(index=st.integers(min_value=0, max_value=1))
        def spend(self, index):
            reward = rewards_of(self.shop.points)[index]
            result = self._do(operations.redeem_points, self.shop.points_card.card_number, {"reward_id": reward.id})
            if isinstance(result, DomainError):
                assert result.code == "insufficient_balance" and self.expected_points < reward.points_cost
            else:
                self.expected_points -= reward.points_cost

        @rule(pick=st.integers(min_value=0, max_value=10_000))
        def void(self, pick):
            if not self.tx_ids:
                return
            tx_id = self.tx_ids[pick % len(self.tx_ids)]
            original = db.session.get(LoyaltyTransaction, tx_id)
            result = self._do(operations.void_transaction, tx_id, {"reason": "test"})
            if isinstance(result, DomainError):
                assert result.code in ("conflict", "insufficient_balance")
                return
            if original.card_id == self.shop.stamp_card.id:
                self.expected_stamps -= original.delta
            else:
                self.expected_points -= original.delta

        @rule(delta=st.integers(min_value=-50, max_value=50).filter(bool))
        def adjust_points(self, delta):
            result = self._do(operations.adjust, self.shop.points_card.card_number, {"delta": delta, "reason": "x"})
            if isinstance(result, DomainError):
                assert result.code == "insufficient_balance" and self.expected_points + delta < 0
            else:
                self.expected_points += delta

        @rule()
        def wrong_pin(self):
            result = self._do(operations.add_stamps, self.shop.stamp_card.card_number, {"staff_pin": "0000"})
            assert isinstance(result, DomainError) and result.code in ("pin_invalid", "pin_locked")
            # An owner clears the lockout so the machine can keep stamping.
            from portal.services import pins

            run_in_transaction(lambda: pins.unlock_program(self.actor, self.shop.stamps.id))

        @rule(minutes=st.sampled_from([1, 10, 16, 60, 60 * 9, 60 * 24]))
        def time_passes(self, minutes):
            self.clock.shift(dt.timedelta(minutes=minutes))

        @invariant()
        def balances_match_ledger(self):
            if not hasattr(self, "shop"):
                return
            db.session.expire_all()
            stamp_card = db.session.get(LoyaltyCard, self.shop.stamp_card.id)
            points_card = db.session.get(LoyaltyCard, self.shop.points_card.id)
            assert stamp_card.stamps == self.expected_stamps >= 0
            assert points_card.points == self.expected_points >= 0
            report = ledger.verify(self.shop.vendor.id)
            assert report.ok, report.problems

    return LedgerMachine


def test_ledger_invariants_hold_under_random_operations(app, factories, make_api):
    counter = iter(range(1000))

    def make_shop():
        class Shop:
            pass

        s = Shop()
        s.vendor = factories.vendor(f"Prop {next(counter)}")
        s.stamps = factories.program(s.vendor, require_pin=True, stamps_required=3)
        s.points = factories.program(s.vendor, type="points")
        factories.pin(s.stamps, "4321")
        s.stamp_card = factories.card(s.stamps)
        s.points_card = factories.card(s.points)
        return s

    machine = ledger_machine(make_shop)
    machine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture],
                                         derandomize=True)
    machine.TestCase().runTest()

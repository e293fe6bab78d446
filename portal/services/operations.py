"""What staff and owners do to a card: stamp, redeem, earn and redeem points, void, adjust.

Each operation: lock the card (SELECT … FOR UPDATE; on SQLite the write transaction is already exclusive), check
the program, the PIN, the anti-fraud rules and the balance, then append to the ledger. The caller commits.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_FLOOR, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import (LoyaltyCard, LoyaltyProgram, LoyaltyReward, LoyaltyTransaction, LoyaltyTransactionNote,
                      RetiredCard)
from . import clock, ledger, messages
from .actor import Actor
from .cards import get_card
from .errors import (Conflict, CooldownActive, DailyLimitReached, Forbidden, InsufficientBalance, NotFound,
                     ValidationError)
from .pins import check_staff_pin, record_refusal
from .programs import ensure_active
from .validation import Fields

MAX_STAMPS_PER_ACTION = 100
MAX_POINTS_PER_ACTION = 1_000_000


def _staff_fields(f: Fields) -> tuple[str | None, int | None]:
    pin = f.raw("staff_pin")
    if pin is not None and (isinstance(pin, bool) or not isinstance(pin, (str, int))):
        f.error("staff_pin", _l("Must be text."))
        pin = None
    pin = str(pin).strip()[:20] if pin not in (None, "") else None
    staff_pin_id = f.integer("staff_pin_id", minimum=1)
    return pin, staff_pin_id


def append(card: LoyaltyCard, actor: Actor, *, note: str = "", **kwargs) -> LoyaltyTransaction:
    """``ledger.append`` with the free-text note kept beside the ledger row, not in its hashed (undeletable)
    ``note``: a note may hold personal data, which erasure must be able to delete (docs/security.md)."""
    tx = ledger.append(card, actor, **kwargs)
    row = None
    if note:
        row = LoyaltyTransactionNote(transaction_id=tx.id, card_id=card.id, note=note)
        db.session.add(row)
    set_committed_value(tx, "text_note", row)
    return tx


def _locked_card(actor: Actor, card_number: str, expected_type: str) -> tuple[LoyaltyCard, LoyaltyProgram]:
    card = get_card(actor, card_number, for_update=True)
    program = card.program
    ensure_active(program)
    if card.erased_at is not None:
        raise NotFound(_l("No card with this number."))
    if program.type != expected_type:
        if expected_type == "stamps":
            raise ValidationError(_l("This is a points card: add points instead of stamps."))
        raise ValidationError(_l("This is a stamp card: add stamps instead of points."))
    return card, program


#: Stamps given to a card since a moment (the daily limit of every stamp), built once; run as Core on the
#: session's connection (a sum needs none of the ORM's result machinery).
_STAMPS_SINCE = select(func.coalesce(func.sum(LoyaltyTransaction.delta), 0)).where(
    LoyaltyTransaction.card_id == bindparam("card_id"), LoyaltyTransaction.type == "stamp_add",
    LoyaltyTransaction.created_at >= bindparam("since", type_=LoyaltyTransaction.created_at.type))


def stamp_window(card: LoyaltyCard, program: LoyaltyProgram, now: dt.datetime) -> tuple[int, dt.datetime, dt.datetime]:
    """(stamps given today in the vendor's timezone, start of today, start of tomorrow) in UTC."""
    day_start, day_end = clock.local_day_bounds(now, program.vendor.timezone)
    today = db.session.connection().execute(_STAMPS_SINCE, {"card_id": card.id, "since": day_start}).scalar()
    return int(today or 0), day_start, day_end


def next_stamp_allowed_at(card: LoyaltyCard, program: LoyaltyProgram, count: int = 1,
                          now: dt.datetime | None = None) -> tuple[str, dt.datetime] | None:
    """Why and until when a stamp would be refused now, or None when it is allowed. Used by the rules below and
    by the tablet page to show a countdown before the staff even tap."""
    now = now or clock.now()
    if program.cooldown_minutes and card.last_stamp_at is not None:
        until = card.last_stamp_at + dt.timedelta(minutes=program.cooldown_minutes)
        if until > now:
            return "cooldown_active", until
    if program.daily_stamp_limit:
        today, _, tomorrow = stamp_window(card, program, now)
        if today + count > program.daily_stamp_limit:
            return "daily_limit_reached", tomorrow
    return None


def add_stamps(actor: Actor, card_number: str, data: dict, *, idempotency_key: str | None = None):
    f = Fields(data)
    count = f.integer("count", minimum=1, maximum=MAX_STAMPS_PER_ACTION, default=1)
    pin, staff_pin_id = _staff_fields(f)
    note = f.string("note", max_length=500, default="")
    f.done()
    card, program = _locked_card(actor, card_number, "stamps")
    pin_check = check_staff_pin(program, pin, actor, card_id=card.id, staff_pin_id=staff_pin_id)
    now = clock.now()
    refusal = next_stamp_allowed_at(card, program, count, now)
    if refusal is not None:
        code, until = refusal
        record_refusal(program.id, card.id, actor.client_key, code)
        retry = clock.seconds_until(until, now)
        if code == "cooldown_active":
            raise CooldownActive(available_at=until, retry_after=retry, tz=program.vendor.timezone)
        raise DailyLimitReached(available_at=until, retry_after=retry, tz=program.vendor.timezone,
                                limit=program.daily_stamp_limit)
    before = card.stamps
    tx = append(card, actor, type="stamp_add", delta=count, staff=pin_check.staff, note=note,
                       idempotency_key=idempotency_key, card_changes={"last_stamp_at": now})
    if program.nudges:  # automatic messages (issue 16): written in this transaction, carried by the outbox row
        messages.after_balance_change(card, program, before)
    pin_check.succeeded()  # a right PIN forgives earlier typos only once its operation is done
    return card, tx


def redeem_stamps(actor: Actor, card_number: str, data: dict, *, idempotency_key: str | None = None):
    f = Fields(data)
    pin, staff_pin_id = _staff_fields(f)
    note = f.string("note", max_length=500, default="")
    f.done()
    card, program = _locked_card(actor, card_number, "stamps")
    pin_check = check_staff_pin(program, pin, actor, card_id=card.id, staff_pin_id=staff_pin_id)
    if card.stamps < program.stamps_required:
        raise InsufficientBalance(_l("Not enough stamps yet: %(have)s of %(need)s.", have=card.stamps,
                                     need=program.stamps_required))
    tx = append(card, actor, type="stamp_redeem", delta=-program.stamps_required, staff=pin_check.staff,
                       note=note or program.reward_text, idempotency_key=idempotency_key,
                       card_changes={"rewards_redeemed": card.rewards_redeemed + 1})
    pin_check.succeeded()  # a right PIN forgives earlier typos only once its operation is done
    return card, tx


def points_for_amount(program: LoyaltyProgram, amount: Decimal) -> int:
    return int((amount * Decimal(program.points_per_unit)).to_integral_value(rounding=ROUND_FLOOR))


def earn_points(actor: Actor, card_number: str, data: dict, *, idempotency_key: str | None = None):
    f = Fields(data)
    amount = f.decimal("amount", minimum=Decimal("0.01"), maximum=Decimal("100000"))
    points = f.integer("points", minimum=1, maximum=MAX_POINTS_PER_ACTION)
    pin, staff_pin_id = _staff_fields(f)
    note = f.string("note", max_length=500, default="")
    if (amount is None) == (points is None) and not f.errors:
        f.error("amount", _l("Give either an amount spent or a number of points."))
    f.done()
    card, program = _locked_card(actor, card_number, "points")
    pin_check = check_staff_pin(program, pin, actor, card_id=card.id, staff_pin_id=staff_pin_id)
    if amount is not None:
        points = points_for_amount(program, amount)
        if points < 1:
            raise ValidationError(fields={"amount": [_l("This amount is too small to earn a point.")]})
    before = card.points
    tx = append(card, actor, type="points_earn", delta=points, amount=amount, staff=pin_check.staff, note=note,
                       idempotency_key=idempotency_key)
    if program.nudges:
        messages.after_balance_change(card, program, before)
    pin_check.succeeded()  # a right PIN forgives earlier typos only once its operation is done
    return card, tx


def redeem_points(actor: Actor, card_number: str, data: dict, *, idempotency_key: str | None = None):
    f = Fields(data)
    reward_id = f.integer("reward_id", required=True, minimum=1)
    pin, staff_pin_id = _staff_fields(f)
    note = f.string("note", max_length=500, default="")
    f.done()
    card, program = _locked_card(actor, card_number, "points")
    reward = db.session.scalar(select(LoyaltyReward).where(LoyaltyReward.id == reward_id,
                                                           LoyaltyReward.program_id == program.id,
                                                           LoyaltyReward.active.is_(True)))
    if reward is None:
        raise ValidationError(fields={"reward_id": [_l("This reward is not in the program's catalog.")]})
    pin_check = check_staff_pin(program, pin, actor, card_id=card.id, staff_pin_id=staff_pin_id)
    if card.points < reward.points_cost:
        raise InsufficientBalance(_l("Not enough points: %(have)s of %(need)s.", have=card.points,
                                     need=reward.points_cost))
    tx = append(card, actor, type="points_redeem", delta=-reward.points_cost, reward_id=reward.id,
                       staff=pin_check.staff, note=note or reward.name, idempotency_key=idempotency_key,
                       card_changes={"rewards_redeemed": card.rewards_redeemed + 1})
    pin_check.succeeded()  # a right PIN forgives earlier typos only once its operation is done
    return card, tx


def _owner_only(actor: Actor) -> None:
    if actor.role == "staff":
        raise Forbidden(_l("Only the shop owner can correct the ledger."))


def get_transaction(actor: Actor, transaction_id: int) -> LoyaltyTransaction:
    stmt = select(LoyaltyTransaction).join(LoyaltyProgram, LoyaltyTransaction.program_id == LoyaltyProgram.id) \
        .where(LoyaltyTransaction.id == transaction_id)
    if actor.vendor_id is not None:
        stmt = stmt.where(LoyaltyProgram.vendor_id == actor.vendor_id)
    elif not actor.is_admin:
        raise NotFound()
    tx = db.session.scalar(stmt)
    if tx is None:
        raise NotFound()
    return tx


def void_transaction(actor: Actor, transaction_id: int, data: dict, *, idempotency_key: str | None = None):
    f = Fields(data)
    reason = f.string("reason", required=True, max_length=500)
    f.done()
    _owner_only(actor)
    original = get_transaction(actor, transaction_id)
    card = get_card(actor, original.card.card_number, for_update=True)
    if original.type == "void":
        raise Conflict(_l("A void cannot itself be voided; record an adjustment instead."))
    already = db.session.scalar(select(LoyaltyTransaction.id).where(
        LoyaltyTransaction.voided_transaction_id == original.id))
    if already is not None:
        raise Conflict(_l("This transaction was already voided."))
    merge = db.session.scalar(select(RetiredCard.id).where(or_(RetiredCard.out_transaction_id == original.id,
                                                               RetiredCard.in_transaction_id == original.id)))
    if merge is not None:  # half of a merge: undone alone, it would strand a balance on the retired card
        raise Conflict(_l("This line is part of a merge of two cards and cannot be voided; record an adjustment "
                          "instead."))
    tx = append(card, actor, type="void", delta=-original.delta, voided_transaction_id=original.id,
                       note=reason, idempotency_key=idempotency_key)
    return card, tx


def adjust(actor: Actor, card_number: str, data: dict, *, idempotency_key: str | None = None):
    f = Fields(data)
    delta = f.integer("delta", required=True, minimum=-MAX_POINTS_PER_ACTION, maximum=MAX_POINTS_PER_ACTION)
    reason = f.string("reason", required=True, max_length=500)
    if delta == 0:
        f.error("delta", _l("An adjustment must change the balance."))
    f.done()
    _owner_only(actor)
    card = get_card(actor, card_number, for_update=True)
    tx = append(card, actor, type="adjustment", delta=delta, note=reason, idempotency_key=idempotency_key)
    return card, tx

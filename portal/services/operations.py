"""What staff and owners do to a card: stamp, redeem, earn and redeem points, void, adjust.

Each operation: lock the card (SELECT … FOR UPDATE; on SQLite the write transaction is already exclusive), check
the program, the PIN, the anti-fraud rules and the balance, then append to the ledger. The caller commits.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_FLOOR, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.orm import aliased, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import (LoyaltyCard, LoyaltyProgram, LoyaltyReward, LoyaltyTransaction, LoyaltyTransactionNote,
                      RetiredCard)
from . import clock, ledger, messages
from .actor import Actor
from .cards import get_card
from .errors import (CardPendingConfirmation, Conflict, CooldownActive, DailyLimitReached, Forbidden,
                     InsufficientBalance, NotFound, UndoAlreadyDone, UndoNotLast, UndoNotPossible, UndoNotYours,
                     UndoWindowPassed, ValidationError, format_moment)
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


_VOID = aliased(LoyaltyTransaction)
#: A stamp that was voided (undone by staff, or voided by the owner) counts as never given: the daily limit and
#: the cooldown see only the stamps that stand (``voided_transaction_id`` is unique, so this is an index probe).
_NOT_VOIDED = ~exists().where(_VOID.voided_transaction_id == LoyaltyTransaction.id)

#: Stamps given to a card since a moment (the daily limit of every stamp), built once; run as Core on the
#: session's connection (a sum needs none of the ORM's result machinery).
_STAMPS_SINCE = select(func.coalesce(func.sum(LoyaltyTransaction.delta), 0)).where(
    LoyaltyTransaction.card_id == bindparam("card_id"), LoyaltyTransaction.type == "stamp_add",
    LoyaltyTransaction.created_at >= bindparam("since", type_=LoyaltyTransaction.created_at.type), _NOT_VOIDED)


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


def _ensure_confirmable(card: LoyaltyCard, pin: str | None) -> None:
    """A pending poster sign-up collects only with a staff PIN (even where the program asks for none): the PIN
    is checked by ``check_staff_pin`` as any other, lockout included."""
    if card.pending and not pin:
        raise CardPendingConfirmation()


def _confirmation(card: LoyaltyCard, actor: Actor, staff, now: dt.datetime) -> dict:
    """The card's columns that a confirming stamp or points change: who saw the card at the till, and when."""
    if not card.pending:
        return {}
    return {"pending": False, "confirmed_at": now, "confirmed_by_pin_id": staff.id,
            "confirmed_by_user_id": actor.user_id, "confirmed_by_name": staff.staff_name}


def add_stamps(actor: Actor, card_number: str, data: dict, *, idempotency_key: str | None = None):
    f = Fields(data)
    count = f.integer("count", minimum=1, maximum=MAX_STAMPS_PER_ACTION, default=1)
    pin, staff_pin_id = _staff_fields(f)
    note = f.string("note", max_length=500, default="")
    f.done()
    card, program = _locked_card(actor, card_number, "stamps")
    _ensure_confirmable(card, pin)
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
                idempotency_key=idempotency_key,
                card_changes={"last_stamp_at": now, **_confirmation(card, actor, pin_check.staff, now)})
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
    _ensure_confirmable(card, pin)
    pin_check = check_staff_pin(program, pin, actor, card_id=card.id, staff_pin_id=staff_pin_id)
    if amount is not None:
        points = points_for_amount(program, amount)
        if points < 1:
            raise ValidationError(fields={"amount": [_l("This amount is too small to earn a point.")]})
    before = card.points
    tx = append(card, actor, type="points_earn", delta=points, amount=amount, staff=pin_check.staff, note=note,
                idempotency_key=idempotency_key, card_changes=_confirmation(card, actor, pin_check.staff, clock.now()))
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
    """The actor's ledger row, with its card (a correction names and locks it)."""
    stmt = select(LoyaltyTransaction).join(LoyaltyProgram, LoyaltyTransaction.program_id == LoyaltyProgram.id) \
        .where(LoyaltyTransaction.id == transaction_id).options(joinedload(LoyaltyTransaction.card))
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
                note=reason, idempotency_key=idempotency_key, card_changes=_void_changes(card, original))
    return card, tx


def _void_changes(card: LoyaltyCard, original: LoyaltyTransaction) -> dict:
    """The card's counters as if ``original`` had never happened: a voided stamp no longer starts a cooldown
    (``last_stamp_at`` goes back to the newest stamp that stands), lifetime totals and the redemption count go
    back. (The daily limit reads the ledger and skips voided stamps by itself: ``_STAMPS_SINCE``.)"""
    if original.type == "stamp_add":
        previous = db.session.scalar(select(func.max(LoyaltyTransaction.created_at)).where(
            LoyaltyTransaction.card_id == card.id, LoyaltyTransaction.type == "stamp_add",
            LoyaltyTransaction.id != original.id, _NOT_VOIDED))
        return {"last_stamp_at": previous, "lifetime_stamps": max(0, card.lifetime_stamps - original.delta)}
    if original.type == "points_earn":
        return {"lifetime_points": max(0, card.lifetime_points - original.delta)}
    if original.type in ("stamp_redeem", "points_redeem"):
        return {"rewards_redeemed": max(0, card.rewards_redeemed - 1)}
    return {}


#: How long after an action its staff member may undo it.
UNDO_WINDOW = dt.timedelta(minutes=2)
#: What staff may undo: their own stamps, points and redemptions (not an owner's void or adjustment).
UNDOABLE = ("stamp_add", "points_earn", "stamp_redeem", "points_redeem")
#: The void's reason, kept in the hashed ledger row as a stable code (shown translated: ``reason_label``).
UNDO_NOTE = "undone_by_staff"


def undo_deadline(tx: LoyaltyTransaction) -> dt.datetime:
    return tx.created_at + UNDO_WINDOW


def _is_author(original: LoyaltyTransaction, actor: Actor, staff) -> bool:
    """Who did it: the staff PIN when the action carries one, else the login (tablet user) or API key."""
    if original.staff_pin_id is not None:
        return staff is not None and staff.id == original.staff_pin_id
    if original.user_id is not None:
        return original.user_id == actor.user_id
    return original.api_key_id is not None and original.api_key_id == actor.api_key_id


def undo_transaction(actor: Actor, transaction_id: int, data: dict, *, idempotency_key: str | None = None):
    """A staff member undoes their own last action on a card (a stamp, points, a redemption) within
    ``UNDO_WINDOW``: a ``void`` row pointing at it with the reason ``UNDO_NOTE``.

    Refused (each with its code) when: it is not a stamp, points or redemption (``undo_not_possible``); it was
    already voided (``undo_already_done``); the window has passed (``undo_window_passed``); anything was written
    to the card's ledger after it — by anyone (``undo_not_last``: the rule is "the card's newest row", so an undo
    never has to reason about what came after); or it was not theirs (``undo_not_yours``). The program's PIN rule
    applies as for a stamp (PIN required, wrong PINs counted towards the lockout); an action made with a PIN can
    only be undone with that same PIN.
    """
    f = Fields(data)
    pin, staff_pin_id = _staff_fields(f)
    f.done()
    original = get_transaction(actor, transaction_id)
    number = db.session.scalar(select(LoyaltyCard.card_number).where(LoyaltyCard.id == original.card_id))
    card = get_card(actor, number, for_update=True)
    program = card.program
    ensure_active(program)
    if original.type not in UNDOABLE:
        raise UndoNotPossible()
    if db.session.scalar(select(LoyaltyTransaction.id).where(
            LoyaltyTransaction.voided_transaction_id == original.id)) is not None:
        raise UndoAlreadyDone()
    now = clock.now()
    deadline = undo_deadline(original)
    if now >= deadline:
        raise UndoWindowPassed(minutes=int(UNDO_WINDOW.total_seconds() // 60),
                               until=format_moment(deadline, program.vendor.timezone))
    if card.chain_head != original.hash:
        raise UndoNotLast()
    pin_check = check_staff_pin(program, pin, actor, card_id=card.id, staff_pin_id=staff_pin_id)
    if not _is_author(original, actor, pin_check.staff):
        raise UndoNotYours()
    tx = ledger.append(card, actor, type="void", delta=-original.delta, voided_transaction_id=original.id,
                       staff=pin_check.staff, note=UNDO_NOTE, idempotency_key=idempotency_key,
                       card_changes=_void_changes(card, original))
    set_committed_value(tx, "text_note", None)
    pin_check.succeeded()
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

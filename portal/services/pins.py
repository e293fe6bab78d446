"""Staff PINs: creation, lookup in O(1) whatever the number of staff, lockout after failed attempts.

Security design (docs/security.md): a PIN is found by ``pin_lookup`` = HMAC-SHA256(pepper, program:PIN), a unique
index per program, so finding the staff member is one indexed query with 1 or 50 staff. ``pin_hash`` is bcrypt over
that HMAC and is verified the first time a PIN is used in a process; the verified (pin id, hash) pair is then cached
for ``PIN_CACHE_SECONDS``, so stamping does not pay ~270 ms of bcrypt per request. A stolen database without the
pepper (which lives in instance/ or the environment, never in the database) does not reveal PINs.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
import time
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.orm import contains_eager, lazyload
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import LoyaltyProgram, PinLockout, Refusal, StaffPin
from . import clock
from .actor import Actor
from .errors import NotFound, PinInvalid, PinLocked, PinRequired, ValidationError
from .programs import get_program
from .security import check_pin_hash, hash_pin, pin_lookup_digest
from .validation import Fields

PIN_RE = re.compile(r"^[0-9]{4,8}$")
#: How precisely StaffPin.last_used_at is kept (see check_staff_pin).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class _VerifiedCache:
    """Process-local memo of (pin id, bcrypt hash) pairs already verified by bcrypt."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str], float] = {}

    def hit(self, pin: StaffPin, ttl: int) -> bool:
        key = (pin.id, pin.pin_hash)
        with self._lock:
            expires = self._entries.get(key)
            if expires is None:
                return False
            if expires < time.monotonic():
                del self._entries[key]
                return False
            return True

    def remember(self, pin: StaffPin, ttl: int) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[(pin.id, pin.pin_hash)] = time.monotonic() + ttl

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verified_cache = _VerifiedCache()


def _validate_pin(f: Fields, name: str = "pin") -> str | None:
    pin = f.string(name, required=True, max_length=8)
    if pin and not PIN_RE.match(pin):
        f.error(name, _l("A PIN is 4 to 8 digits."))
        return None
    return pin


def create_pin(actor: Actor, program_id: int, data: dict) -> tuple[StaffPin, str]:
    """A new staff PIN. Without ``pin`` in ``data`` a random 4-digit PIN is chosen. Returns (row, plaintext PIN),
    the plaintext to be shown once."""
    program = get_program(actor, program_id)
    f = Fields(data)
    name = f.string("staff_name", required=True, max_length=120)
    pin = _validate_pin(f) if f.has("pin") else None
    user_id = f.integer("user_id", minimum=1)
    if user_id is not None:
        from ..models import User

        user = db.session.get(User, user_id)
        if user is None or user.vendor_id != program.vendor_id:
            f.error("user_id", _l("No such staff account in this shop."))
    f.done()
    if pin is None:
        pin = _free_random_pin(program)
    lookup = pin_lookup_digest(program.id, pin)
    if db.session.scalar(select(StaffPin.id).where(StaffPin.program_id == program.id,
                                                   StaffPin.pin_lookup == lookup)) is not None:
        raise ValidationError(fields={"pin": [_l("Another staff member of this program already uses this PIN.")]})
    row = StaffPin(program=program, staff_name=name, pin_lookup=lookup, pin_hash=hash_pin(lookup),
                   user_id=user_id)
    db.session.add(row)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise ValidationError(fields={"pin": [_l("Another staff member of this program already uses this PIN.")]})
    return row, pin


def _free_random_pin(program: LoyaltyProgram, digits: int = 4) -> str:
    for _ in range(50):
        pin = f"{secrets.randbelow(10 ** digits):0{digits}d}"
        lookup = pin_lookup_digest(program.id, pin)
        if db.session.scalar(select(StaffPin.id).where(StaffPin.program_id == program.id,
                                                       StaffPin.pin_lookup == lookup)) is None:
            return pin
    return _free_random_pin(program, digits + 1)


def reset_pin(actor: Actor, pin_id: int, data: dict) -> tuple[StaffPin, str]:
    row = get_pin(actor, pin_id)
    f = Fields(data)
    pin = _validate_pin(f) if f.has("pin") else None
    f.done()
    if pin is None:
        pin = _free_random_pin(row.program)
    lookup = pin_lookup_digest(row.program_id, pin)
    clash = db.session.scalar(select(StaffPin.id).where(StaffPin.program_id == row.program_id,
                                                        StaffPin.pin_lookup == lookup, StaffPin.id != row.id))
    if clash is not None:
        raise ValidationError(fields={"pin": [_l("Another staff member of this program already uses this PIN.")]})
    row.pin_lookup, row.pin_hash = lookup, hash_pin(lookup)
    db.session.flush()
    return row, pin


def get_pin(actor: Actor, pin_id: int) -> StaffPin:
    """The actor's live PIN, with its program (the pages name it)."""
    stmt = select(StaffPin).join(LoyaltyProgram).where(StaffPin.id == pin_id, StaffPin.active.is_(True)).options(
        contains_eager(StaffPin.program))
    if actor.vendor_id is None and not actor.is_admin:
        raise NotFound()
    if actor.vendor_id is not None:
        stmt = stmt.where(LoyaltyProgram.vendor_id == actor.vendor_id)
    row = db.session.scalar(stmt)
    if row is None:
        raise NotFound()
    return row


def list_pins(actor: Actor, program_id: int | None = None) -> list[StaffPin]:
    stmt = select(StaffPin).join(LoyaltyProgram).where(LoyaltyProgram.vendor_id == actor.vendor_id,
                                                       StaffPin.active.is_(True))
    if program_id is not None:
        stmt = stmt.where(StaffPin.program_id == program_id)
    return list(db.session.scalars(stmt.order_by(StaffPin.program_id, StaffPin.staff_name)))


def delete_pin(actor: Actor, pin_id: int) -> None:
    """Retire a staff PIN. The row stays (the ledger points at it and keeps the staff name); its lookup digest is
    replaced by a random value so the PIN stops working at once and can be given to someone else."""
    row = get_pin(actor, pin_id)
    row.active = False
    row.pin_lookup = "retired-" + secrets.token_hex(28)
    verified_cache.clear()
    db.session.flush()


def unlock(actor: Actor, pin_id: int) -> StaffPin:
    """Clear the lockouts of the PIN's program for every client (an owner's decision)."""
    row = get_pin(actor, pin_id)
    db.session.execute(delete(PinLockout).where(PinLockout.program_id == row.program_id))
    return row


def lockouts(actor: Actor, program_id: int) -> list[PinLockout]:
    get_program(actor, program_id)
    now = clock.now()
    rows = db.session.scalars(select(PinLockout).where(PinLockout.program_id == program_id))
    return [r for r in rows if r.locked_until and r.locked_until > now]


def unlock_program(actor: Actor, program_id: int) -> None:
    get_program(actor, program_id)
    db.session.execute(delete(PinLockout).where(PinLockout.program_id == program_id))


def _lockout_row(program: LoyaltyProgram, client_key: str) -> PinLockout:
    """The (program, client) lockout row, created if needed and locked for the rest of the transaction."""
    stmt = select(PinLockout).where(PinLockout.program_id == program.id,
                                    PinLockout.client_key == client_key).with_for_update()
    row = db.session.scalar(stmt)
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            db.session.add(PinLockout(program_id=program.id, client_key=client_key, failed_attempts=0))
            db.session.flush()
    except IntegrityError:
        pass  # created by a concurrent request: read it below, with the lock
    return db.session.scalar(stmt.execution_options(populate_existing=True))


def _current_lockout(program: LoyaltyProgram, client_key: str) -> PinLockout | None:
    # A plain read: the common case (no failures) must not serialise every stamp of one till on a row lock.
    # Failures are counted under the lock in _register_failure.
    return db.session.scalar(select(PinLockout).where(PinLockout.program_id == program.id,
                                                      PinLockout.client_key == client_key))


#: The hot path of a stamp with a PIN, built once (bound values at execution).
_STAFF_WITH_LOCKOUT = (
    select(StaffPin, PinLockout)
    .outerjoin(PinLockout, and_(PinLockout.program_id == StaffPin.program_id,
                                PinLockout.client_key == bindparam("client")))
    .where(StaffPin.program_id == bindparam("program_id"), StaffPin.pin_lookup == bindparam("lookup"),
           StaffPin.active.is_(True))
    .options(lazyload(StaffPin.program)))  # the program is loaded already


@dataclass(slots=True)
class PinCheck:
    """A PIN that was right: its staff member (None when no PIN was needed nor given) and this client's failure
    counter as read with it. The caller calls ``succeeded()`` once the operation the PIN confirms is done."""

    staff: StaffPin | None
    lockout: PinLockout | None = None

    def succeeded(self) -> None:
        """The right PIN forgives earlier typos, but only when the operation it confirmed was done: a right PIN on
        a refused operation (cooldown, daily limit, balance too low) must not reset the counter, or alternating
        with wrong PINs would let anyone guess colleagues' PINs without ever locking the pad."""
        state = self.lockout
        if state is not None and state.failed_attempts:
            state.failed_attempts = 0
            state.updated_at = clock.now()


def check_staff_pin(program: LoyaltyProgram, pin: str | None, actor: Actor, *, card_id: int | None = None,
                    staff_pin_id: int | None = None) -> PinCheck:
    """The staff member whose PIN this is, or a refusal.

    Without a required PIN, the matching staff member if a PIN was given anyway, else None (in ``PinCheck.staff``).
    Raises PinRequired, PinLocked (423, even for the right PIN while locked) or PinInvalid (with attempts left).
    Earlier failures are forgiven only by ``PinCheck.succeeded()``, after the operation.
    """
    if not program.require_pin and not pin:
        return PinCheck(None)
    client = actor.client_key
    now = clock.now()
    pin = str(pin).strip() if pin else ""
    staff = state = None
    if PIN_RE.match(pin):
        # One query: the staff member with this PIN and this client's lockout state (the common case: a right
        # PIN, no lockout row). A wrong PIN finds no row; _register_failure then reads the lockout under a lock.
        row = db.session.execute(_STAFF_WITH_LOCKOUT, {
            "program_id": program.id, "lookup": pin_lookup_digest(program.id, pin), "client": client}).first()
        if row is not None:
            staff, state = row
    elif not pin:
        state = _current_lockout(program, client)
    if state is not None and state.locked_until is not None and state.locked_until > now:
        _refuse(program, card_id, client, "pin_locked")
        raise PinLocked(available_at=state.locked_until, retry_after=clock.seconds_until(state.locked_until, now),
                        tz=program.vendor.timezone)
    if not pin:
        raise PinRequired()
    if staff is not None and staff_pin_id is not None and staff.id != staff_pin_id:
        staff = None
    if staff is not None and not _verify_hash(staff):
        staff = None
    if staff is None:
        _register_failure(program, client, card_id, now)
    if staff.last_used_at is None or now - staff.last_used_at >= LAST_USED_RESOLUTION:
        # Every stamp of a shift uses the same PIN row: writing it on each one would serialise all the tills on
        # that row's lock until commit. "Last used" is kept to the minute instead.
        staff.last_used_at = now
    return PinCheck(staff, state)


def _verify_hash(staff: StaffPin) -> bool:
    ttl = current_app.config.get("PIN_CACHE_SECONDS", 600)
    if verified_cache.hit(staff, ttl):
        return True
    if check_pin_hash(staff.pin_lookup, staff.pin_hash):
        verified_cache.remember(staff, ttl)
        return True
    return False


def _register_failure(program: LoyaltyProgram, client: str, card_id: int | None, now: dt.datetime):
    state = _lockout_row(program, client)
    if state.locked_until is not None and state.locked_until > now:
        # Locked by a concurrent request while we were checking.
        _refuse(program, card_id, client, "pin_locked")
        raise PinLocked(available_at=state.locked_until, retry_after=clock.seconds_until(state.locked_until, now),
                        tz=program.vendor.timezone)
    if state.locked_until is not None:  # an expired lockout: start counting again
        state.failed_attempts = 0
        state.locked_until = None
    state.failed_attempts += 1
    state.updated_at = now
    attempts_left = max(0, program.pin_max_attempts - state.failed_attempts)
    if attempts_left == 0:
        # This was the last allowed attempt: it is still a wrong PIN (403), and from now on the pad is locked.
        state.locked_until = now + dt.timedelta(minutes=program.pin_lockout_minutes)
        state.failed_attempts = 0
        db.session.flush()
        _refuse(program, card_id, client, "pin_invalid")
        raise PinInvalid(PinInvalid.locked_message, attempts_left=0, available_at=state.locked_until,
                         retry_after=clock.seconds_until(state.locked_until, now), tz=program.vendor.timezone)
    db.session.flush()
    _refuse(program, card_id, client, "pin_invalid")
    raise PinInvalid(attempts_left=attempts_left)


def _refuse(program: LoyaltyProgram, card_id: int | None, client: str, code: str) -> None:
    record_refusal(program.id, card_id, client, code)


def record_refusal(program_id: int, card_id: int | None, client: str | None, code: str) -> None:
    db.session.add(Refusal(program_id=program_id, card_id=card_id, client_key=client, code=code,
                           created_at=clock.now()))
    db.session.flush()

"""Cards: numbers with a check digit, enrolment, look-up, search, GDPR export and erasure."""
from __future__ import annotations

import re
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, bindparam, delete, or_, select, union_all, update
from sqlalchemy.orm import contains_eager, joinedload, load_only, selectinload
from sqlalchemy.exc import IntegrityError

from .. import storage
from ..extensions import db
from ..models import LoyaltyCard, LoyaltyProgram, LoyaltyTransaction, LoyaltyTransactionNote, RetiredCard
from . import clock, idempotency
from .actor import Actor
from .errors import CardReplaced, NotFound, ValidationError
from .i18n import normalise_locale
from .programs import ensure_active, get_program
from .validation import Fields
from .wallet_outbox import enqueue

CARD_NUMBER_BODY = 9  # digits before the check digit: one billion numbers


def luhn_check_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return len(number) >= 2 and number.isascii() and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


def new_card_number() -> str:
    body = str(secrets.randbelow(9 * 10 ** (CARD_NUMBER_BODY - 1)) + 10 ** (CARD_NUMBER_BODY - 1))
    return body + luhn_check_digit(body)


def format_card_number(number: str) -> str:
    """'1234567890' → '123 456 7890' for reading aloud at a till."""
    return f"{number[:3]} {number[3:6]} {number[6:]}" if len(number) == 10 else number


def normalise_card_number(raw: str | None) -> str:
    """Strip spaces and dashes, check the length and the Luhn digit before any database query."""
    cleaned = re.sub(r"[\s\-.]", "", raw or "")
    if not (cleaned.isascii() and cleaned.isdigit()) or len(cleaned) != CARD_NUMBER_BODY + 1:
        raise ValidationError(_l("A card number has 10 digits."),
                              fields={"card_number": [_l("A card number has 10 digits.")]})
    if not luhn_valid(cleaned):
        raise ValidationError(_l("This card number has a typo (the check digit does not match)."),
                              fields={"card_number": [_l("This card number has a typo (the check digit does not "
                                                         "match).")]})
    return cleaned


def free_card_number() -> str:
    """A new card number that no card has and no retired card had (an old number must stay refused)."""
    for _ in range(10):
        number = new_card_number()
        if db.session.scalar(select(RetiredCard.id).where(RetiredCard.card_number == number)) is None:
            return number
    raise RuntimeError("could not draw a free card number")


def _new_card(program: LoyaltyProgram, name: str, email: str | None, phone: str | None, locale: str,
              pending: bool = False) -> LoyaltyCard:
    now = clock.now()
    for _ in range(10):
        card = LoyaltyCard(program_id=program.id, card_number=free_card_number(),
                           public_token=secrets.token_urlsafe(18), customer_name=name, customer_email=email,
                           customer_phone=phone, locale=locale, stamps=0, points=0, lifetime_stamps=0,
                           lifetime_points=0, rewards_redeemed=0, apple_serial=secrets.token_hex(16),
                           apple_auth_token=secrets.token_urlsafe(24), created_at=now, updated_at=now,
                           pending=pending)
        card.program = program
        try:
            with db.session.begin_nested():
                db.session.add(card)
                db.session.flush()
            return card
        except IntegrityError:
            continue  # a card number collision: draw again
    raise RuntimeError("could not draw a free card number")


def _existing(program: LoyaltyProgram, email: str | None, phone: str | None) -> LoyaltyCard | None:
    conditions = []
    if email:
        conditions.append(LoyaltyCard.customer_email == email)
    if phone:
        conditions.append(LoyaltyCard.customer_phone == phone)
    if not conditions:
        return None
    return db.session.scalar(select(LoyaltyCard).where(LoyaltyCard.program_id == program.id,
                                                       LoyaltyCard.erased_at.is_(None), or_(*conditions))
                             .options(joinedload(LoyaltyCard.program))  # the caller answers with the card
                             .order_by(LoyaltyCard.id).limit(1))


def parse_customer(data: dict, *, contact_required: bool) -> tuple[str, str | None, str | None, str]:
    f = Fields(data)
    name = f.string("name", max_length=120, default="") or ""
    email = f.email("email")
    phone = f.phone("phone")
    locale_raw = f.string("locale", max_length=10, default=None)
    locale = normalise_locale(locale_raw) if locale_raw else None
    if locale_raw and locale is None:
        f.error("locale", _l("Must be one of: %(choices)s.", choices="en, fr, de, lb"))
    if contact_required and not email and not phone and "email" not in f.errors and "phone" not in f.errors:
        f.error("email", _l("Give an email address or a phone number."))
    f.done()
    return name, email, phone, locale or "en"


def _enroll(program: LoyaltyProgram, data: dict, *, contact_required: bool,
            pending: bool = False) -> tuple[LoyaltyCard, bool]:
    ensure_active(program)
    name, email, phone, locale = parse_customer(data, contact_required=contact_required)
    # Serialise enrolments of one program so two simultaneous sign-ups with one email make one card.
    db.session.scalar(select(LoyaltyProgram.id).where(LoyaltyProgram.id == program.id).with_for_update())
    existing = _existing(program, email, phone)
    if existing is not None:
        return existing, False
    card = _new_card(program, name, email, phone, locale, pending)
    enqueue(card, "enrolled")
    return card, True


def enroll(program: LoyaltyProgram, data: dict, *, pending: bool = False) -> tuple[LoyaltyCard, bool]:
    """A card for this customer, made or found: returns (card, created). The same email or phone again returns
    the existing card, so this is for trusted callers only (demo data, tests); the public edges use
    ``enrolment.self_enroll``, which never hands an existing card out. ``pending``: a poster sign-up of a program
    with ``pending_signups`` (cards made at the till never are)."""
    return _enroll(program, data, contact_required=True, pending=pending)


def enroll_by_vendor(actor: Actor, data: dict) -> tuple[LoyaltyCard, bool]:
    """A card made by the shop (at the till, or imported): an email or phone is optional."""
    f = Fields(data)
    program_id = f.integer("program_id", required=True, minimum=1)
    f.done()
    return _enroll(get_program(actor, program_id), data, contact_required=False)


def _vendor_scoped(stmt, actor: Actor):
    if actor.vendor_id is not None:
        return stmt.join(LoyaltyProgram, LoyaltyCard.program_id == LoyaltyProgram.id).where(
            LoyaltyProgram.vendor_id == actor.vendor_id)
    if actor.is_admin:
        return stmt
    raise NotFound()


#: A card by number with its program and the program's vendor; ``_VENDOR_CARD`` within one vendor. Built once
#: (values bound at execution): the stamp path runs them on every request.
_CARD = (select(LoyaltyCard).join(LoyaltyCard.program).where(LoyaltyCard.card_number == bindparam("number"))
         .options(contains_eager(LoyaltyCard.program).joinedload(LoyaltyProgram.vendor)))
_VENDOR_CARD = _CARD.where(LoyaltyProgram.vendor_id == bindparam("vendor_id"))

#: What a balance change reads of a card's program and vendor — the rules it checks and what its answer shows —
#: and no more: not the program's texts, colours, logo and dates, which every stamp would otherwise fetch and
#: decode. (A column left out here is still readable: the ORM loads it with one more query. tests/test_storage.py
#: pins a stamp's statements, so a rule that starts reading one shows there.)
BALANCE_COLUMNS = contains_eager(LoyaltyCard.program).load_only(
    LoyaltyProgram.vendor_id, LoyaltyProgram.slug, LoyaltyProgram.name, LoyaltyProgram.type,
    LoyaltyProgram.stamps_required, LoyaltyProgram.reward_text, LoyaltyProgram.points_per_unit,
    LoyaltyProgram.currency, LoyaltyProgram.require_pin, LoyaltyProgram.cooldown_minutes,
    LoyaltyProgram.daily_stamp_limit, LoyaltyProgram.pin_max_attempts, LoyaltyProgram.pin_lockout_minutes,
    LoyaltyProgram.active, LoyaltyProgram.pending_signups, LoyaltyProgram.nudges)
_STATEMENTS = {(False, False): _CARD, (True, False): _VENDOR_CARD,
               (False, True): storage.locked(_CARD.options(BALANCE_COLUMNS)),
               (True, True): storage.locked(_VENDOR_CARD.options(BALANCE_COLUMNS))}


def get_card(actor: Actor, card_number: str, *, for_update: bool = False) -> LoyaltyCard:
    """The actor's card with this number, with its program and the program's vendor (one statement). The number
    names a resource (it comes from a URL): whatever its shape, no such card is a 404, and a typo in the check
    digit is caught before the database is asked. With ``for_update`` the card is locked for the rest of the unit
    of work (``storage.locked``): what a balance change checks — the card, its program's rules, the vendor's time
    zone — is read under that lock."""
    try:
        number = normalise_card_number(card_number)
    except ValidationError as error:
        raise NotFound(error.message) from None
    if actor.vendor_id is None and not actor.is_admin:
        raise NotFound()
    stmt = _STATEMENTS[actor.vendor_id is not None, for_update]
    card = db.session.scalar(stmt, {"number": number, "vendor_id": actor.vendor_id})
    if card is None:
        if _retired_number(actor, number):
            raise CardReplaced()
        raise NotFound(_l("No card with this number."))
    return card


def _retired_number(actor: Actor, number: str) -> bool:
    """Whether ``number`` is an old number of one of the actor's vendor's cards (replaced or merged)."""
    stmt = select(RetiredCard.id).join(LoyaltyCard, RetiredCard.card_id == LoyaltyCard.id).where(
        RetiredCard.card_number == number)
    return db.session.scalar(_vendor_scoped(stmt, actor)) is not None


def lock_card(card: LoyaltyCard) -> LoyaltyCard:
    """Re-read the card under a row lock (SELECT … FOR UPDATE; SQLite holds its write lock already)."""
    return storage.lock_card(card)


def get_card_by_token(token: str, *, rewards: bool = False) -> LoyaltyCard:
    """The card of a card link, with its program and vendor (and the program's reward catalog with ``rewards``:
    the card page shows it, and so does the Google Wallet object its save link carries)."""
    if not token or len(token) > 64:
        raise NotFound()
    stmt = select(LoyaltyCard).where(LoyaltyCard.public_token == token).options(
        joinedload(LoyaltyCard.program).joinedload(LoyaltyProgram.vendor))
    if rewards:
        stmt = stmt.options(joinedload(LoyaltyCard.program).selectinload(LoyaltyProgram.rewards))
    card = db.session.scalar(stmt)
    if card is None or card.erased_at is not None or not card.program.vendor.active:
        raise NotFound()
    return card


def _like_escape(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _pattern(value: str, *, prefix: bool):
    """A LIKE pattern bound as a literal at execution time: PostgreSQL then plans the search for this very
    pattern (trigram index or ordered scan) instead of reusing a generic plan of a prepared statement, which
    cannot use the trigram indexes and costs a full scan at a million cards."""
    text = _like_escape(value) + "%"
    if not prefix:
        text = "%" + text
    return bindparam(None, text, type_=String(), literal_execute=True)


def _search_conditions(q: str) -> list:
    digits = re.sub(r"[\s\-.]", "", q)
    conditions = []
    if digits.isascii() and digits.isdigit():
        conditions.append(LoyaltyCard.card_number.like(_pattern(digits, prefix=True), escape="/"))
        conditions.append(LoyaltyCard.customer_phone.like(_pattern(digits.lstrip("0"), prefix=False), escape="/"))
    lowered = q.lower()
    if "@" in q:
        conditions.append(LoyaltyCard.customer_email.like(_pattern(lowered, prefix=True), escape="/"))
    else:
        # ILIKE on PostgreSQL (served by the pg_trgm index of migration perf01; lower(name) LIKE … could not use
        # it), lower(…) LIKE lower(…) on SQLite: the same matches as before.
        conditions.append(LoyaltyCard.customer_name.ilike(_pattern(q, prefix=False), escape="/"))
        conditions.append(LoyaltyCard.customer_email.like(_pattern(lowered, prefix=True), escape="/"))
    return conditions


#: Above this many programs a vendor-wide search is one query, not one ordered branch per program.
_MAX_BRANCHES = 20


def search_cards(actor: Actor, q: str | None = None, program_id: int | None = None, *, limit: int = 50,
                 offset: int = 0) -> list[LoyaltyCard]:
    """Cards of the actor's vendor matching ``q`` (card number or phone digits, name, e-mail prefix), most
    recently active first.

    Vendor-wide (no ``program_id``), the cards are read per program — one ordered branch per program, merged —
    so each branch can walk the (program_id, updated_at) index backwards and stop after ``offset + limit`` rows
    when the term is common, or use the trigram indexes when it is rare; a single query over all the vendor's
    programs would have to sort every match (tens of thousands for a common name at a million cards).
    """
    limit = min(limit, 200)
    q = (q or "").strip()[:100]
    conditions = [LoyaltyCard.erased_at.is_(None)]
    if q:
        conditions.append(or_(*_search_conditions(q)))
    order = (LoyaltyCard.updated_at.desc(), LoyaltyCard.id.desc())
    if program_id is None and actor.vendor_id is not None:
        program_ids = list(db.session.scalars(select(LoyaltyProgram.id)
                                              .where(LoyaltyProgram.vendor_id == actor.vendor_id)))
        if not program_ids:
            return []
        if 1 < len(program_ids) <= _MAX_BRANCHES:
            branches = [select(LoyaltyCard.id, LoyaltyCard.updated_at).where(LoyaltyCard.program_id == pid,
                                                                              *conditions)
                        .order_by(*order).limit(offset + limit).subquery() for pid in program_ids]
            merged = union_all(*[select(b.c.id, b.c.updated_at) for b in branches]).subquery()
            ids = list(db.session.scalars(select(merged.c.id).order_by(merged.c.updated_at.desc(),
                                                                       merged.c.id.desc())
                                          .limit(limit).offset(offset)))
            if not ids:
                return []
            found = {c.id: c for c in db.session.scalars(select(LoyaltyCard).where(LoyaltyCard.id.in_(ids))
                                                         .options(joinedload(LoyaltyCard.program)))}
            return [found[i] for i in ids if i in found]
    stmt = _vendor_scoped(select(LoyaltyCard), actor).where(*conditions)
    if program_id is not None:
        stmt = stmt.where(LoyaltyCard.program_id == program_id)
    # A list shows each card with its program's name: loaded with the cards, not one query per card.
    stmt = stmt.options(joinedload(LoyaltyCard.program))
    return list(db.session.scalars(stmt.order_by(*order).limit(limit).offset(offset)))


def recent_transactions(card: LoyaltyCard, limit: int = 50, before_id: int | None = None) -> list[LoyaltyTransaction]:
    """The card's newest ledger rows, with their notes (what a history shows)."""
    stmt = select(LoyaltyTransaction).where(LoyaltyTransaction.card_id == card.id).options(
        selectinload(LoyaltyTransaction.text_note))
    if before_id:
        stmt = stmt.where(LoyaltyTransaction.id < before_id)
    return list(db.session.scalars(stmt.order_by(LoyaltyTransaction.id.desc()).limit(min(limit, 500))))


def export_personal_data(card: LoyaltyCard) -> dict:
    from .serializers import card_to_dict, transaction_to_dict

    return {
        "card": card_to_dict(card, include_customer=True),
        "transactions": [transaction_to_dict(t) for t in recent_transactions(card, limit=500)],
        "exported_at": clock.now().isoformat(),
    }


def clear_customer(card: LoyaltyCard) -> None:
    """The card's personal fields anonymised, the card retired (erased); its link stops working."""
    now = clock.now()
    card.customer_name = ""
    card.customer_email = None
    card.customer_phone = None
    card.erased_at = now
    card.updated_at = now  # Wallet asks what changed since: the erased card's pass (now voided) did
    card.public_token = secrets.token_urlsafe(18)  # the old link stops working


def erase_personal_data(card: LoyaltyCard) -> None:
    """GDPR erasure: personal fields are anonymised, and so is every copy of them we keep: the transactions'
    free-text notes (kept outside the hashed ledger for this), the owner's notes on replacements and merges,
    and the stored responses of idempotent requests (their ``customer`` block and notes). The ledger rows stay:
    they hold no personal data. The same goes for the cards merged into this one earlier. The wallet worker
    then voids the Apple pass (pushed to its devices) and sets the Google object inactive."""
    locked = lock_card(card)
    merged_in = select(RetiredCard.card_id).where(RetiredCard.successor_card_id == locked.id)
    card_ids = [locked.id, *db.session.scalars(merged_in)]
    clear_customer(locked)
    db.session.execute(delete(LoyaltyTransactionNote).where(LoyaltyTransactionNote.card_id.in_(card_ids)))
    db.session.execute(update(RetiredCard).where(or_(RetiredCard.card_id.in_(card_ids),
                                                     RetiredCard.successor_card_id.in_(card_ids)))
                       .values(note=""))
    idempotency.redact_card(card_ids)
    enqueue(locked, "erased")
    db.session.flush()

"""Replacing a card (a lost or stolen phone) and merging two cards of one person.

A replacement keeps the card — its row, balance and ledger (so its hash chain is untouched) — and gives it a new
identity: a new number, card link, Apple serial and authentication token, and (made by the wallet worker) a new
Google object. The old identity is kept in ``retired_cards``: the old number is refused at the till and in the
API with ``card_replaced`` (410), the old link is dead (404), the old Apple serial answers Wallet's web service
with a voided pass (pushed to its registered devices), and the old Google object is set inactive.

A merge moves the whole balance of one card into another card of the same program with two ledger entries
(``adjustment`` out of one, into the other: both chains stay intact), and retires the merged card like a replaced
one; its personal data is cleared (the person carries on with the other card).
"""
from __future__ import annotations

import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from ..extensions import db
from ..models import LoyaltyCard, RetiredCard
from . import clock, sign_in
from .actor import Actor
from .cards import (clear_customer, format_card_number, free_card_number, get_card, get_card_by_token, lock_card,
                    normalise_card_number)
from .errors import Forbidden, NotFound, ValidationError
from .operations import append
from .validation import Fields
from .wallet_outbox import enqueue

CUSTOMER = Actor(vendor_id=None, role="customer", name="")


def _owner_only(actor: Actor) -> None:
    if actor.role == "staff":
        raise Forbidden(_l("Only the shop owner can replace or merge cards."))


def _retire(card: LoyaltyCard, actor: Actor, *, reason: str, successor: LoyaltyCard, note: str = "",
            out_tx=None, in_tx=None) -> RetiredCard:
    """Move the card's identity to ``retired_cards`` and give the card a new one; the wallet worker then voids
    the old passes (outbox reason ``retired``). The card must be locked."""
    now = clock.now()
    retired = RetiredCard(
        card_id=card.id, successor_card_id=successor.id, reason=reason, card_number=card.card_number,
        apple_serial=card.apple_serial, apple_auth_token=card.apple_auth_token,
        google_object_id=card.google_object_id, note=note or "", by_customer=actor.role == "customer",
        user_id=actor.user_id, api_key_id=actor.api_key_id, actor_name=actor.name or "",
        out_transaction_id=out_tx.id if out_tx is not None else None,
        in_transaction_id=in_tx.id if in_tx is not None else None, retired_at=now)
    db.session.add(retired)
    card.card_number = free_card_number()
    card.public_token = secrets.token_urlsafe(18)
    card.apple_serial = secrets.token_hex(16)
    card.apple_auth_token = secrets.token_urlsafe(24)
    card.google_object_id = None  # the worker creates the new object (its id follows the new serial)
    card.updated_at = now
    db.session.flush()
    sign_in.end_unused_links(card)
    enqueue(card, "retired")
    return retired


def replace_card(actor: Actor, card_number: str, data: dict) -> tuple[LoyaltyCard, RetiredCard]:
    """The owner (page or API) replaces a card: same balance and history, new number, link and passes."""
    f = Fields(data)
    note = f.string("reason", max_length=500, default="") or ""
    f.done()
    _owner_only(actor)
    card = get_card(actor, card_number, for_update=True)
    if card.erased_at is not None:
        raise NotFound(_l("No card with this number."))
    return card, _retire(card, actor, reason="replaced", successor=card, note=note)


def replace_card_by_token(token: str) -> tuple[LoyaltyCard, RetiredCard]:
    """The customer replaces their own card from its page (whoever holds the card link may)."""
    card = lock_card(get_card_by_token(token))
    if card is None or card.public_token != token or card.erased_at is not None:
        raise NotFound()  # replaced or erased by a concurrent request
    return card, _retire(card, CUSTOMER, reason="replaced", successor=card)


def merge_cards(actor: Actor, card_number: str, data: dict) -> tuple[LoyaltyCard, RetiredCard, list]:
    """Merge the card ``card_number`` into the card ``data["into"]`` (same program): its balance moves with two
    ledger entries (returned; none for an empty card), contact details the other card lacks are copied, and the
    merged card is retired. Returns the card that carries on."""
    source_number = get_card(actor, card_number).card_number  # an unknown or foreign card is 404 before all
    f = Fields(data)
    note = f.string("reason", max_length=500, default="") or ""
    into_raw = f.string("into", required=True, max_length=40)
    f.done()
    _owner_only(actor)
    into_number = _into_number(source_number, into_raw)
    # Lock both cards in one order (by number) so two crossing merges cannot deadlock.
    locked = {n: get_card(actor, n, for_update=True) for n in sorted((source_number, into_number))}
    source, target = locked[source_number], locked[into_number]
    _check_pair(source, target)
    amount = source.balance
    out_tx = in_tx = None
    if amount:
        suffix = f" · {note}" if note else ""
        out_tx = append(source, actor, type="adjustment", delta=-amount,
                        note=f"→ {format_card_number(target.card_number)}{suffix}")
        in_tx = append(target, actor, type="adjustment", delta=amount,
                       note=f"← {format_card_number(source.card_number)}{suffix}")
    for field in ("customer_name", "customer_email", "customer_phone"):
        if not getattr(target, field) and getattr(source, field):
            setattr(target, field, getattr(source, field))
    retired = _retire(source, actor, reason="merged", successor=target, note=note, out_tx=out_tx, in_tx=in_tx)
    clear_customer(source)
    db.session.flush()
    return target, retired, [tx for tx in (out_tx, in_tx) if tx is not None]


def _into_number(source_number: str, into_raw: str | None) -> str:
    try:
        into_number = normalise_card_number(into_raw)
    except ValidationError as error:
        raise ValidationError(error.message, fields={"into": [error.message]}) from None
    if into_number == source_number:
        raise ValidationError(fields={"into": [_l("A card cannot be merged into itself.")]})
    return into_number


def _check_pair(source: LoyaltyCard, target: LoyaltyCard) -> None:
    if source.erased_at is not None or target.erased_at is not None:
        raise NotFound(_l("No card with this number."))
    if source.program_id != target.program_id:
        raise ValidationError(fields={"into": [_l("Both cards must belong to the same program.")]})


def merge_target(actor: Actor, card: LoyaltyCard, into: str) -> LoyaltyCard:
    """The card ``card`` would be merged into, checked as ``merge_cards`` checks it (for the confirmation)."""
    _owner_only(actor)
    target = get_card(actor, _into_number(card.card_number, into))
    _check_pair(card, target)
    return target


def possible_duplicates(card: LoyaltyCard, limit: int = 10) -> list[LoyaltyCard]:
    """Other cards of the program with the same email, phone or name: candidates for a merge."""
    same = []
    if card.customer_email:
        same.append(LoyaltyCard.customer_email == card.customer_email)
    if card.customer_phone:
        same.append(LoyaltyCard.customer_phone == card.customer_phone)
    if card.customer_name.strip():
        same.append(func.lower(LoyaltyCard.customer_name) == card.customer_name.strip().lower())
    if not same:
        return []
    return list(db.session.scalars(select(LoyaltyCard).where(
        LoyaltyCard.program_id == card.program_id, LoyaltyCard.id != card.id, LoyaltyCard.erased_at.is_(None),
        or_(*same)).order_by(LoyaltyCard.updated_at.desc()).limit(limit)))


def history(card: LoyaltyCard) -> list[RetiredCard]:
    """The card's earlier identities and the cards merged into it, newest first (the owner's audit)."""
    return list(db.session.scalars(select(RetiredCard).where(RetiredCard.successor_card_id == card.id)
                                   .order_by(RetiredCard.retired_at.desc(), RetiredCard.id.desc())))

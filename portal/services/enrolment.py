"""Self-enrolment from the shop's poster page and the public API.

A card link is a credential, so enrolling with an email or phone that already has a card in the program hands out
nothing about that card: the customer is sent a sign-in link at the address on file (``link_sent``), or, with a
phone only, asked to come to the till (``ask_at_till``). No second card is made. Only a new customer gets their
new card at once. (Trusted callers — the shop, demo data — use ``cards.enroll`` / ``cards.enroll_by_vendor``.)
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import random

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete

from ..storage import dialect_insert
from ..extensions import db
from ..models import EnrolFormNonce, LoyaltyCard, LoyaltyProgram
from . import cards, clock, sign_in
from .errors import DomainError, ValidationError
from .programs import ensure_active

CONSENT_MESSAGE = _l("The customer's consent is required: send \"consent\": true.")


class FormReplayed(DomainError):
    code = "form_replayed"
    status = 400
    default_message = _l("This form was already sent. Please check your details and send it again.")


@dataclasses.dataclass(frozen=True)
class Enrolment:
    status: str  # "created" | "link_sent" | "ask_at_till"
    card: LoyaltyCard | None = None  # only for a new card

    @property
    def created(self) -> bool:
        return self.status == "created"


def consume_form_nonce(nonce: str, expires_at: dt.datetime) -> None:
    """Record an enrolment form's nonce; a form whose nonce is already recorded was sent before: refused.
    ``INSERT … ON CONFLICT DO NOTHING``: of two simultaneous posts of one form, exactly one inserts."""
    if not nonce or len(nonce) > 64:
        raise FormReplayed()
    stmt = dialect_insert(EnrolFormNonce).values(nonce=nonce, expires_at=expires_at).on_conflict_do_nothing(
        index_elements=["nonce"]).returning(EnrolFormNonce.nonce)
    if db.session.execute(stmt).first() is None:
        raise FormReplayed()
    if random.random() < 0.01:
        purge_form_nonces()


def purge_form_nonces() -> int:
    """Forget the nonces of forms too old to be accepted anyway."""
    return db.session.execute(delete(EnrolFormNonce).where(EnrolFormNonce.expires_at < clock.now())).rowcount


def self_enroll(program: LoyaltyProgram, data: dict, *, form_nonce: str | None = None,
                form_expires_at: dt.datetime | None = None) -> Enrolment:
    """Enrol a customer who gave their consent (``data["consent"] is True``). With ``form_nonce`` (the poster
    page's form) the form is used up. See the module's docstring for what a repeat enrolment answers."""
    ensure_active(program)
    consent_missing = data.get("consent") is not True if hasattr(data, "get") else True
    try:
        cards.parse_customer(data, contact_required=True)
    except ValidationError as error:
        if consent_missing:
            error.fields = {**(error.fields or {}), "consent": [CONSENT_MESSAGE]}
        raise
    if consent_missing:
        raise ValidationError(fields={"consent": [CONSENT_MESSAGE]})
    if form_nonce is not None:
        consume_form_nonce(form_nonce, form_expires_at or clock.now() + dt.timedelta(days=1))
    # With the program's "pending sign-ups" switch, a poster card collects nothing until staff see it at the till.
    card, created = cards.enroll(program, data, pending=program.pending_signups)
    if created:
        return Enrolment("created", card)
    if card.customer_email:
        sign_in.send_link(card)
        return Enrolment("link_sent")
    return Enrolment("ask_at_till")

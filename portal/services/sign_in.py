"""Sign-in links: the way back to a card for whoever holds its email address or stands at the till.

A link is ``/s/<token>``; the database keeps only the SHA-256 of the token. It opens its card once
(``consume``: a conditional ``UPDATE … SET used_at = now WHERE id = … AND used_at IS NULL``) and expires after
30 minutes (emailed) or 10 minutes (shown as a QR on the staff tablet). Opening the link leads to the card page
``/c/<public_token>``, which is the card's lasting credential (docs/security.md).

The token of an emailed link is derived from the email's Message-ID with the app's ``SECRET_KEY`` (HMAC), so the
outbox row needs no copy of it and a retried send is the same message; the token of a till link is random.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets

from flask import current_app, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import LoyaltyCard, LoyaltyProgram, MailOutbox, SignInLink
from . import clock
from .actor import Actor
from .errors import DomainError
from .mail import outbox
from .mail.settings import setting
from .validation import Fields

log = logging.getLogger("portal.sign_in")

EMAIL_MINUTES = 30
TILL_MINUTES = 10


class SignInLinkInvalid(DomainError):
    code = "sign_in_link_invalid"
    status = 410
    default_message = _l("This link has expired or was already used.")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mail_token(message_id: str) -> str:
    """The token in the email with this Message-ID (HMAC-SHA256 under SECRET_KEY, 256 bits)."""
    digest = hmac.new(str(current_app.config["SECRET_KEY"]).encode(), b"sign-in-mail\0" + message_id.encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_url(token: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/s/{token}"


# --- asking for a link -------------------------------------------------------------------------------------------

def send_link(card: LoyaltyCard) -> bool:
    """Queue an email with a sign-in link to the address on file. False (and nothing queued) without an address,
    or when the card was sent ``MAIL_LINKS_PER_CARD_PER_HOUR`` links in the last hour: the person asking is told
    the same either way, so a stranger cannot flood a customer's inbox."""
    if not card.customer_email or card.erased_at is not None:
        return False
    now = clock.now()
    recent = db.session.scalar(select(func.count()).select_from(MailOutbox).where(
        MailOutbox.card_id == card.id, MailOutbox.kind == "sign_in",
        MailOutbox.created_at > now - dt.timedelta(hours=1)))
    if recent >= int(setting("MAIL_LINKS_PER_CARD_PER_HOUR")):
        log.info("sign-in mail for card %s not queued: %s already in the last hour", card.id, recent)
        return False
    row = outbox.enqueue("sign_in", card.customer_email, card.locale, card=card)
    db.session.add(SignInLink(card_id=card.id, token_hash=token_hash(mail_token(row.message_id)), via="email",
                              created_at=now, expires_at=now + dt.timedelta(minutes=EMAIL_MINUTES)))
    db.session.flush()
    return True


def request_by_email(program: LoyaltyProgram, data: dict) -> None:
    """"Lost your card?": when a card of this program has this email, a sign-in link is sent to it. Returns
    nothing, so the answer cannot depend on whether the address is known."""
    f = Fields(data)
    email = f.email("email", required=True)
    f.done()
    card = db.session.scalar(select(LoyaltyCard).where(LoyaltyCard.program_id == program.id,
                                                       LoyaltyCard.customer_email == email,
                                                       LoyaltyCard.erased_at.is_(None))
                             .order_by(LoyaltyCard.id).limit(1))
    if card is not None:
        send_link(card)


def create_till_link(actor: Actor, card_number: str, data: dict) -> tuple[LoyaltyCard, str, dt.datetime]:
    """A 10-minute link to this card for the tablet to show as a QR. The staff PIN is checked as for a stamp
    when the program requires one; the link row keeps who made it."""
    from . import cards, pins

    card = cards.get_card(actor, card_number)
    if card.erased_at is not None:
        raise SignInLinkInvalid(_l("This card's personal data was deleted."))
    pin_check = pins.check_staff_pin(card.program, (data or {}).get("staff_pin"), actor, card_id=card.id)
    staff = pin_check.staff
    token = secrets.token_urlsafe(32)
    now = clock.now()
    link = SignInLink(card_id=card.id, token_hash=token_hash(token), via="till", created_at=now,
                      expires_at=now + dt.timedelta(minutes=TILL_MINUTES), user_id=actor.user_id,
                      staff_pin_id=staff.id if staff is not None else None,
                      staff_name=staff.staff_name if staff is not None else (actor.name or None))
    db.session.add(link)
    db.session.flush()
    pin_check.succeeded()
    log.info("till sign-in link %s for card %s made by user %s (staff %s)", link.id, card.id, actor.user_id,
             link.staff_name)
    return card, token, link.expires_at


# --- opening a link ----------------------------------------------------------------------------------------------

def _find(token: str) -> SignInLink | None:
    if not token or len(token) > 100:
        return None
    return db.session.scalar(select(SignInLink).where(SignInLink.token_hash == token_hash(token)))


def _usable_card(link: SignInLink) -> LoyaltyCard | None:
    card = db.session.scalar(select(LoyaltyCard).where(LoyaltyCard.id == link.card_id).options(
        joinedload(LoyaltyCard.program).joinedload(LoyaltyProgram.vendor)))  # the page names both
    if card is None or card.erased_at is not None or not card.program.vendor.active:
        return None
    return card


def peek(token: str) -> tuple[LoyaltyCard | None, bool]:
    """(the link's card, whether the link can still be used) without using it; (None, False) for no link."""
    link = _find(token)
    if link is None:
        return None, False
    card = _usable_card(link)
    usable = card is not None and link.used_at is None and link.expires_at > clock.now()
    return card, usable


def consume(token: str) -> LoyaltyCard:
    """Use the link: exactly one request succeeds, and only before it expires. Returns the card."""
    link = _find(token)
    if link is None:
        raise SignInLinkInvalid()
    now = clock.now()
    used = db.session.execute(update(SignInLink).where(SignInLink.id == link.id, SignInLink.used_at.is_(None),
                                                       SignInLink.expires_at > now)
                              .values(used_at=now).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        raise SignInLinkInvalid()
    card = _usable_card(link)
    if card is None:
        raise SignInLinkInvalid()
    return card


def end_unused_links(card: LoyaltyCard) -> None:
    """A replaced card's links die with its old identity: a link sent or shown before the replacement (possibly to
    whoever now holds the lost phone) opens nothing afterwards."""
    now = clock.now()
    db.session.execute(update(SignInLink).where(SignInLink.card_id == card.id, SignInLink.used_at.is_(None))
                       .values(used_at=now).execution_options(synchronize_session=False))


# --- the email ---------------------------------------------------------------------------------------------------

def render_mail(row: MailOutbox, card: LoyaltyCard | None):
    """(sender name, subject, text, html) of a sign-in email, in the current (the row's) locale; None when the
    card is gone."""
    if card is None or card.erased_at is not None:
        return None
    program = card.program
    shop = program.vendor.name
    context = {"shop": shop, "program": program, "card": card, "url": link_url(mail_token(row.message_id)),
               "minutes": EMAIL_MINUTES, "lang": row.locale}
    subject = _("Your loyalty card at %(shop)s", shop=shop)
    return (shop, subject, render_template("mail/sign_in.txt", subject=subject, **context),
            render_template("mail/sign_in.html", subject=subject, **context))

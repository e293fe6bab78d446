"""Writing an email into the outbox, in the caller's transaction (the mail worker sends it after the commit)."""
from __future__ import annotations

import secrets

from ...extensions import db
from ...models import LoyaltyCard, MailOutbox
from .. import clock
from .settings import mail_from


def enqueue(kind: str, to_address: str, locale: str, *, card: LoyaltyCard | None = None) -> MailOutbox:
    """A row to send; its Message-ID is fixed now, so every attempt sends the same message. The Message-ID is 128
    random bits from ``secrets`` (``email.utils.make_msgid`` draws from the ``random`` module, whose state tests
    and libraries may reset, and two ids made in the same 10 ms then collide)."""
    now = clock.now()
    domain = mail_from().rpartition("@")[2] or "localhost"
    row = MailOutbox(kind=kind, card_id=card.id if card is not None else None, to_address=to_address,
                     locale=locale or "en", message_id=f"<{secrets.token_hex(16)}@{domain}>", created_at=now,
                     available_at=now, attempts=0)
    db.session.add(row)
    db.session.flush()
    return row

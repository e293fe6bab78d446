"""Customers' sign-in links, the mail outbox, and the single-use stamps of the enrolment form."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..storage.types import UTCDateTime
from ..clock import now
from .base import Model, pk


class SignInLink(Model):
    """A one-time link to a card: only the SHA-256 of its token is kept. ``via`` is "email" (30 minutes) or
    "till" (a QR shown on the staff tablet, 10 minutes; ``user_id``/``staff_name`` say who made it)."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = pk()
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"), nullable=False,
                                         index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    via: Mapped[str] = mapped_column(String(8), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    staff_pin_id: Mapped[int | None] = mapped_column(ForeignKey("staff_pins.id", ondelete="SET NULL"))
    staff_name: Mapped[str | None] = mapped_column(String(120))


class MailOutbox(Model):
    """An email to send, written in the transaction of the request that asked for it; the mail worker renders it
    in ``locale``, sends it and records the outcome. ``message_id`` is set once, so a retried send is the same
    message."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_pending", "delivered_at", "available_at"),)

    id: Mapped[int] = pk()
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"), index=True)
    to_address: Mapped[str] = mapped_column(String(254), nullable=False)
    locale: Mapped[str] = mapped_column(String(8), nullable=False, default="en")
    message_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class EnrolFormNonce(Model):
    """The nonce of an enrolment form that was accepted: a second post of the same form is refused."""

    __tablename__ = "enrol_form_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)

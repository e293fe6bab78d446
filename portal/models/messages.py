"""Messages to pass holders (issue 16): what the owner wrote, who it goes to, and each card's delivery.

* ``pass_messages``: one message of a program — its texts per language, its segment, when it goes out (UTC; the
  owner types it in the shop's time zone) and its status. An automatic nudge ("one stamp to go" …) is a message
  row too (``kind`` ``nudge_*``, status ``nudge``): its deliveries are made one card at a time, after a stamp or by
  the periodic "we miss you" check.
* ``pass_message_deliveries``: the message for one card. Written for the whole segment by one ``INSERT … SELECT``
  when the message is sent; the wallet worker marks it ``sent`` once the card's Apple devices were pushed and its
  Google object got the message, recording whether Google notified (``TEXT_AND_NOTIFY``) or not (``TEXT``: the pass
  had its 3 notifications of the last 24 h).
* ``pass_message_opt_outs``: cards whose holder turned messages off on their card page.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..storage.types import UTCDateTime
from .base import Model, pk

MESSAGE_KINDS = ("message", "nudge_one_to_go", "nudge_reward_ready", "nudge_miss_you")
MESSAGE_STATUSES = ("draft", "scheduled", "sending", "nudge")
SEGMENTS = ("all", "near_reward", "inactive", "card", "nudge")


class PassMessage(Model):
    __tablename__ = "pass_messages"
    __table_args__ = (
        CheckConstraint("kind IN ('message', 'nudge_one_to_go', 'nudge_reward_ready', 'nudge_miss_you')",
                        name="kind"),
        CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'nudge')", name="status"),
        CheckConstraint("segment IN ('all', 'near_reward', 'inactive', 'card', 'nudge')", name="segment"),
        Index("ix_pass_messages_program_created", "program_id", "created_at"),
        Index("ix_pass_messages_due", "scheduled_at", postgresql_where=text("status = 'scheduled'"),
              sqlite_where=text("status = 'scheduled'")),
    )

    id: Mapped[int] = pk()
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False, default="message")
    #: {"en": "…", "fr": "…"}: at least one language; a card in another language gets ``fallback_locale``'s text.
    texts: Mapped[dict] = mapped_column(JSON, nullable=False)
    fallback_locale: Mapped[str] = mapped_column(String(8), nullable=False, default="en")
    segment: Mapped[str] = mapped_column(String(16), nullable=False)
    #: ``inactive``: days without a visit; ``card``: the card's id.
    segment_days: Mapped[int | None] = mapped_column(Integer)
    segment_card_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Cards the segment held when the message was sent (deliveries written).
    recipients: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)

    program = relationship("LoyaltyProgram", lazy="raise_on_sql")


class PassMessageDelivery(Model):
    __tablename__ = "pass_message_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent')", name="status"),
        CheckConstraint("google_mode IS NULL OR google_mode IN ('notify', 'silent')", name="google_mode"),
        Index("ix_pass_message_deliveries_message_status", "message_id", "status"),
        Index("ix_pass_message_deliveries_card_id", "card_id", "id"),
        Index("ix_pass_message_deliveries_card_pending", "card_id", postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
    )

    id: Mapped[int] = pk()
    message_id: Mapped[int] = mapped_column(ForeignKey("pass_messages.id", ondelete="CASCADE"), nullable=False)
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False, default="pending")
    #: What Google did with it: ``notify`` (TEXT_AND_NOTIFY), ``silent`` (TEXT), NULL (no Google object).
    google_mode: Mapped[str | None] = mapped_column(String(8))
    apple_pushes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PassMessageOptOut(Model):
    __tablename__ = "pass_message_opt_outs"

    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)

"""Staff integrity (issue 17): the shop's opening hours, the owner's reviews of staff signals, and the weekly
digests sent to owners. The signals themselves are not stored: they are computed from the ledger when asked
(``portal/services/staff_signals.py``); a review names the signal by its stable key."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..storage.types import UTCDateTime
from ..clock import now
from .base import Model, pk


class OpeningHours(Model):
    """When a shop is open on one weekday (0 = Monday), in minutes after local midnight. No row for any weekday:
    the shop set no hours (the out-of-hours signal is off); rows for some weekdays only: closed on the others."""

    __tablename__ = "shop_opening_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("opens_minute >= 0 AND opens_minute < closes_minute AND closes_minute <= 1440",
                        name="minutes"),
    )

    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True)
    weekday: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    opens_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    closes_minute: Mapped[int] = mapped_column(Integer, nullable=False)


class SignalReview(Model):
    """An owner marked a staff signal reviewed: the audit of who, when and why. ``signal_key`` is the signal's
    stable key (kind, week, subject, staff name)."""

    __tablename__ = "staff_signal_reviews"
    __table_args__ = (UniqueConstraint("vendor_id", "signal_key", name="uq_staff_signal_reviews_vendor_key"),)

    id: Mapped[int] = pk()
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False)
    signal_key: Mapped[str] = mapped_column(String(300), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    staff_name: Mapped[str] = mapped_column(String(120), nullable=False)
    note: Mapped[str] = mapped_column(String(1000), nullable=False, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    #: Who, as shown when the review was made (kept if the login is removed later).
    reviewed_by: Mapped[str] = mapped_column(String(254), nullable=False)
    reviewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)


class StaffDigest(Model):
    """One weekly digest for one owner: written once per (shop, owner, week) — a second run of ``loyalty
    staff-digest`` for the same week finds the row and sends nothing — with the mail outbox row that carries it
    and the figures it shows (JSON), so the worker renders it in the owner's language without asking again."""

    __tablename__ = "staff_digests"
    __table_args__ = (UniqueConstraint("vendor_id", "user_id", "week_start", name="uq_staff_digests_week"),)

    id: Mapped[int] = pk()
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    week_start: Mapped[dt.date] = mapped_column(Date, nullable=False)
    mail_outbox_id: Mapped[int | None] = mapped_column(ForeignKey("mail_outbox.id", ondelete="SET NULL"),
                                                       index=True)
    summary: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)

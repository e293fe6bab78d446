"""What the portal knows about the passes in customers' wallets (pass health), Google's save/delete callbacks
already seen (their nonces), and where a program's pass is relevant (shop locations)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import now
from ..storage.types import UTCDateTime
from .base import Model, pk


class PassHealth(Model):
    """One row per card whose pass did something: Apple registrations seen, the pass fetched, a push sent, a
    Google save or delete callback. Written by the web service, the wallet worker and the callback endpoint; a
    card without a row has had no wallet activity. The registrations themselves stay in
    ``apple_device_registrations`` (how many devices hold the pass now)."""

    __tablename__ = "wallet_pass_health"
    __table_args__ = (CheckConstraint("google_state IS NULL OR google_state IN ('saved', 'deleted')",
                                      name="google_state"),)

    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"), primary_key=True)
    #: when a device first registered for the pass (so "no registration now" means updates were turned off)
    apple_first_registered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    apple_unregistered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    apple_unregistrations: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    apple_last_fetched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    apple_last_push_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: "ok" or the APNs error of the last push round of this card
    apple_last_push_result: Mapped[str | None] = mapped_column(String(200))
    #: push tokens APNs answered 410 (Unregistered) for, deleted by the worker
    apple_tokens_pruned: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    google_state: Mapped[str | None] = mapped_column(String(8))
    google_state_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    google_saves: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    google_deletes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class GoogleCallbackNonce(Model):
    """The nonce of every Google callback accepted: Google may deliver one twice, the second is dropped."""

    __tablename__ = "google_callback_nonces"

    id: Mapped[int] = pk()
    nonce: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now, index=True)


class ProgramLocation(Model):
    """A shop location where the program's pass is relevant (Apple: lock-screen suggestion near it; Google:
    ``merchantLocations``). At most 10 per program (Apple's documented limit, Google's too)."""

    __tablename__ = "program_locations"
    __table_args__ = (
        UniqueConstraint("program_id", "position", name="uq_program_locations_program_position"),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude"),
        CheckConstraint("position BETWEEN 0 AND 9", name="position"),
    )

    id: Mapped[int] = pk()
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    latitude: Mapped[float] = mapped_column(Float, nullable=False)
    longitude: Mapped[float] = mapped_column(Float, nullable=False)
    relevant_text: Mapped[str] = mapped_column(String(120), nullable=False, default="")

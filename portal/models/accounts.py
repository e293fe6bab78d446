"""Vendors (shops), users (operators, owners, staff) and API keys."""
from __future__ import annotations

import datetime as dt

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..storage.types import UTCDateTime
from .base import Model, TimestampMixin, pk

ROLES = ("admin", "owner", "staff")


class Vendor(TimestampMixin, Model):
    __tablename__ = "vendors"

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    slug: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="Europe/Luxembourg")
    locale: Mapped[str] = mapped_column(String(8), nullable=False, default="en")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    programs = relationship("LoyaltyProgram", back_populates="vendor", lazy="raise_on_sql",
                            order_by="LoyaltyProgram.id")


class User(UserMixin, TimestampMixin, Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'owner', 'staff')", name="role"),
        CheckConstraint("role = 'admin' OR vendor_id IS NOT NULL", name="vendor_for_shop_roles"),
    )

    id: Mapped[int] = pk()
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(120))
    locale: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Raised to end every session of this login (logout, new password, disabled, "log out everywhere").
    session_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    vendor = relationship("Vendor", lazy="raise_on_sql")

    def get_id(self) -> str:  # Flask-Login: what the session cookie holds
        """``"<id>:<session_version>"``: a cookie issued before the version was raised no longer loads the user
        (``accounts.user_for_session``)."""
        return f"{self.id}:{self.session_version}"

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active


class ApiKey(TimestampMixin, Model):
    """An API key; only its SHA-256 is stored (keys are 256-bit random, so a fast hash is the right tool)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("scope IN ('admin', 'vendor')", name="scope"),
        CheckConstraint("scope = 'admin' OR vendor_id IS NOT NULL", name="vendor_for_vendor_scope"),
    )

    id: Mapped[int] = pk()
    scope: Mapped[str] = mapped_column(String(10), nullable=False)
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    vendor = relationship("Vendor", lazy="raise_on_sql")


Index("ix_users_vendor_role", User.vendor_id, User.role)

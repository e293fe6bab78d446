"""The loyalty tables: programs, rewards, cards, the append-only ledger, staff PINs and their lockouts,
Apple device registrations, the wallet outbox, idempotency records and the refusal log."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, Numeric, String,
                        Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..storage.types import UTCDateTime
from ..clock import now
from .base import Model, TimestampMixin, pk

PROGRAM_TYPES = ("stamps", "points")
TRANSACTION_TYPES = ("stamp_add", "stamp_redeem", "points_earn", "points_redeem", "adjustment", "void")


class LoyaltyProgram(TimestampMixin, Model):
    __tablename__ = "loyalty_programs"
    __table_args__ = (
        CheckConstraint("type IN ('stamps', 'points')", name="type"),
        CheckConstraint("stamps_required IS NULL OR stamps_required BETWEEN 1 AND 100", name="stamps_required"),
        CheckConstraint("cooldown_minutes >= 0", name="cooldown"),
        CheckConstraint("daily_stamp_limit >= 0", name="daily_limit"),
        CheckConstraint("pin_max_attempts >= 1", name="pin_max_attempts"),
        CheckConstraint("pin_lockout_minutes >= 1", name="pin_lockout"),
    )

    id: Mapped[int] = pk()
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False, index=True)
    slug: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    type: Mapped[str] = mapped_column(String(10), nullable=False)
    stamps_required: Mapped[int | None] = mapped_column(Integer)
    reward_text: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    points_per_unit: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="EUR")
    require_pin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    cooldown_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=15)
    daily_stamp_limit: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    pin_max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    pin_lockout_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=15)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    #: Cards made from the poster (self-enrolment) start pending until a staff member confirms one with their PIN
    #: on its first stamp or points (migration undo01). Off by default.
    pending_signups: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                  server_default=text("false"))
    # Wallet pass look: colours as "#rrggbb", the logo as PNG bytes.
    background_color: Mapped[str] = mapped_column(String(7), nullable=False, default="#1f4e79")
    foreground_color: Mapped[str] = mapped_column(String(7), nullable=False, default="#ffffff")
    label_color: Mapped[str] = mapped_column(String(7), nullable=False, default="#cfe3f5")
    # Deferred: loaded only where the image is used (passes, the logo route), not with every card a stamp locks.
    logo_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    #: Automatic messages (issue 16, services/messages.py): {"one_to_go": {"on": true, "message_id": 3,
    #: "daily_cap": 1}, …}, or NULL when none was ever set. Read with the program on the stamp path, so a stamp
    #: of a program without nudges costs no extra query.
    nudges: Mapped[dict | None] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now, onupdate=now)
    # A time-boxed offer (migration health01): the pass's relevantDates; both or neither (services/relevance.py).
    relevant_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    relevant_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    vendor = relationship("Vendor", back_populates="programs", lazy="raise_on_sql")
    rewards = relationship("LoyaltyReward", back_populates="program", lazy="raise_on_sql",
                           order_by="LoyaltyReward.points_cost")

    @property
    def is_stamps(self) -> bool:
        return self.type == "stamps"


class ProgramSlug(Model):
    """Every slug a program ever had (its current one included), so a slug printed on a poster stays with its
    program: the primary key makes each slug the platform's only. Written by a trigger on ``loyalty_programs``
    (migration ``sec03_public``) whenever a program is created or its slug changes, never by the application."""

    __tablename__ = "loyalty_program_slugs"

    slug: Mapped[str] = mapped_column(String(80), primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="CASCADE"), nullable=False,
                                            index=True)


class LoyaltyReward(TimestampMixin, Model):
    """An entry of a points program's rewards catalog."""

    __tablename__ = "loyalty_rewards"
    __table_args__ = (CheckConstraint("points_cost >= 1", name="points_cost"),)

    id: Mapped[int] = pk()
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    points_cost: Mapped[int] = mapped_column(Integer, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    program = relationship("LoyaltyProgram", back_populates="rewards", lazy="raise_on_sql")


class LoyaltyCard(TimestampMixin, Model):
    __tablename__ = "loyalty_cards"
    __table_args__ = (
        CheckConstraint("stamps >= 0", name="stamps_non_negative"),
        CheckConstraint("points >= 0", name="points_non_negative"),
        Index("ix_loyalty_cards_program_email", "program_id", "customer_email"),
        Index("ix_loyalty_cards_program_phone", "program_id", "customer_phone"),
        Index("ix_loyalty_cards_program_updated", "program_id", "updated_at"),
    )

    id: Mapped[int] = pk()
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="CASCADE"), nullable=False)
    card_number: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    public_token: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    customer_name: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    customer_email: Mapped[str | None] = mapped_column(String(254))
    customer_phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8), nullable=False, default="en")
    stamps: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    points: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lifetime_stamps: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lifetime_points: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rewards_redeemed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    apple_serial: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    apple_auth_token: Mapped[str] = mapped_column(String(64), nullable=False)
    google_object_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    last_stamp_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The hash of the card's newest ledger row (the head of its hash chain), kept with the balance so an append
    #: needs no look-up of the previous row; ``verify`` checks it against the ledger.
    chain_head: Mapped[str | None] = mapped_column(String(64))
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)
    #: A poster sign-up waiting to be seen at the till (``LoyaltyProgram.pending_signups``): it collects nothing
    #: until a stamp or points given with a staff PIN confirms it. Who confirmed it and when (plain ids, no foreign
    #: key: migration undo01).
    pending: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("false"))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_pin_id: Mapped[int | None] = mapped_column(Integer)
    confirmed_by_user_id: Mapped[int | None] = mapped_column(Integer)
    confirmed_by_name: Mapped[str | None] = mapped_column(String(120))

    program = relationship("LoyaltyProgram", lazy="raise_on_sql")

    @property
    def balance(self) -> int:
        return self.stamps if self.program.type == "stamps" else self.points


class LoyaltyTransaction(Model):
    """The append-only ledger. The database rejects UPDATE and DELETE on this table (trigger in the migration)."""

    __tablename__ = "loyalty_transactions"
    __table_args__ = (
        CheckConstraint(
            "type IN ('stamp_add', 'stamp_redeem', 'points_earn', 'points_redeem', 'adjustment', 'void')",
            name="type"),
        CheckConstraint("balance_after >= 0", name="balance_after_non_negative"),
        CheckConstraint("type <> 'void' OR voided_transaction_id IS NOT NULL", name="void_points_at_original"),
        Index("ix_loyalty_transactions_card_id_id", "card_id", "id"),
        Index("ix_loyalty_transactions_card_type_created", "card_id", "type", "created_at"),
        Index("ix_loyalty_transactions_program_created", "program_id", "created_at"),
        # One staff member's rows of a period (the Staff view and its signals, migration staff01); on PostgreSQL
        # with the columns the signals read, so they are index-only scans.
        Index("ix_loyalty_transactions_program_staff_created", "program_id", "staff_name", "created_at",
              postgresql_include=["type", "card_id", "delta", "user_id", "api_key_id", "staff_pin_id", "id"]),
    )

    id: Mapped[int] = pk()
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="RESTRICT"), nullable=False)
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="RESTRICT"), nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    delta: Mapped[int] = mapped_column(Integer, nullable=False)
    balance_after: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    reward_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_rewards.id", ondelete="SET NULL"))
    staff_pin_id: Mapped[int | None] = mapped_column(ForeignKey("staff_pins.id", ondelete="SET NULL"))
    staff_name: Mapped[str | None] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    voided_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_transactions.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), nullable=False)

    card = relationship("LoyaltyCard", lazy="raise_on_sql")
    reward = relationship("LoyaltyReward", lazy="raise_on_sql")
    #: The free-text note, outside the hashed row so that erasure can remove it (migration card02).
    text_note = relationship("LoyaltyTransactionNote", uselist=False, lazy="raise_on_sql", viewonly=True)

    @property
    def display_note(self) -> str:
        """The note to show: the erasable one; rows written before card02 keep theirs in the hashed ``note``."""
        return self.text_note.note if self.text_note is not None else self.note


class LoyaltyTransactionNote(Model):
    """A transaction's free-text note (a staff remark, a correction's reason). Kept out of the hashed ledger:
    it may hold personal data, and erasure deletes it (docs/security.md)."""

    __tablename__ = "loyalty_transaction_notes"

    transaction_id: Mapped[int] = mapped_column(ForeignKey("loyalty_transactions.id", ondelete="CASCADE"),
                                                primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"), nullable=False,
                                         index=True)
    note: Mapped[str] = mapped_column(String(500), nullable=False)


class RetiredCard(Model):
    """A card identity that no longer works: the number, Apple serial and token, and Google object of a card that
    was replaced (a lost phone) or merged into another card. The old number is refused with ``card_replaced``;
    the old Apple serial still answers Wallet's web service, with a voided pass; the old Google object is set
    inactive. ``successor_card_id`` is the card that carries on (the same card after a replacement). The row is
    the audit of who retired it and when."""

    __tablename__ = "retired_cards"
    __table_args__ = (CheckConstraint("reason IN ('replaced', 'merged')", name="reason"),)

    id: Mapped[int] = pk()
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"), nullable=False,
                                         index=True)
    successor_card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"),
                                                   nullable=False, index=True)
    reason: Mapped[str] = mapped_column(String(16), nullable=False)
    card_number: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    apple_serial: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    apple_auth_token: Mapped[str] = mapped_column(String(64), nullable=False)
    google_object_id: Mapped[str | None] = mapped_column(String(200))
    #: The owner's reason for a replacement or merge (free text: erased with the card's personal data).
    note: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    by_customer: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(120), nullable=False, default="")
    #: A merge's two ledger rows (the balance out of this card, into the successor).
    out_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("loyalty_transactions.id", ondelete="SET NULL"))
    in_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("loyalty_transactions.id", ondelete="SET NULL"))
    retired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)

    card = relationship("LoyaltyCard", foreign_keys=[card_id], lazy="raise_on_sql")


class StaffPin(TimestampMixin, Model):
    """A staff member's PIN for one program.

    ``pin_lookup`` is HMAC-SHA256(PIN_PEPPER, program id + PIN): an O(1) index to find the staff member and the
    per-program uniqueness guard. ``pin_hash`` is bcrypt over the same HMAC, checked once per process and then
    cached (docs/security.md). Neither reveals the PIN from a leaked database without the pepper.
    """

    __tablename__ = "staff_pins"
    __table_args__ = (UniqueConstraint("program_id", "pin_lookup", name="uq_staff_pins_program_lookup"),)

    id: Mapped[int] = pk()
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    staff_name: Mapped[str] = mapped_column(String(120), nullable=False)
    pin_lookup: Mapped[str] = mapped_column(String(64), nullable=False)
    pin_hash: Mapped[str] = mapped_column(String(100), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    program = relationship("LoyaltyProgram", lazy="raise_on_sql")


class PinLockout(Model):
    """Failed PIN attempts per program and client (an API key or a logged-in tablet user), so one bad actor
    cannot lock every till."""

    __tablename__ = "pin_lockouts"
    __table_args__ = (UniqueConstraint("program_id", "client_key", name="uq_pin_lockouts_program_client"),)

    id: Mapped[int] = pk()
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="CASCADE"), nullable=False)
    client_key: Mapped[str] = mapped_column(String(80), nullable=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)


class AppleDeviceRegistration(TimestampMixin, Model):
    __tablename__ = "apple_device_registrations"
    __table_args__ = (
        UniqueConstraint("device_library_id", "pass_type_id", "serial_number", name="uq_apple_reg_device_pass"),
        Index("ix_apple_reg_serial", "serial_number"),
    )

    id: Mapped[int] = pk()
    device_library_id: Mapped[str] = mapped_column(String(128), nullable=False)
    push_token: Mapped[str] = mapped_column(String(200), nullable=False)
    pass_type_id: Mapped[str] = mapped_column(String(200), nullable=False)
    serial_number: Mapped[str] = mapped_column(String(64), nullable=False)


class WalletOutbox(Model):
    """A pending wallet update, written in the same transaction as the balance change it announces."""

    __tablename__ = "wallet_outbox"
    __table_args__ = (
        Index("ix_wallet_outbox_pending", "delivered_at", "available_at"),
        # Only the rows waiting (migration sec03_public): the worker's claim walks them in order, and "does this
        # card have a row waiting or in flight" (the claim, a design change's coalescing) looks at them alone,
        # however many delivered rows a card has — 10 000 waiting rows after a design change stay cheap.
        Index("ix_wallet_outbox_due", "available_at", "id", postgresql_where=text("delivered_at IS NULL"),
              sqlite_where=text("delivered_at IS NULL")),
        Index("ix_wallet_outbox_card_waiting", "card_id", postgresql_where=text("delivered_at IS NULL"),
              sqlite_where=text("delivered_at IS NULL")),
    )

    id: Mapped[int] = pk()
    card_id: Mapped[int] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="CASCADE"), nullable=False,
                                         index=True)
    reason: Mapped[str] = mapped_column(String(32), nullable=False, default="balance")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class IdempotencyRecord(Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[int] = pk()
    scope: Mapped[str] = mapped_column(String(80), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    #: The card whose data the stored response shows (its customer block is redacted when the card is erased).
    card_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now, index=True)


class Refusal(Model):
    """An anti-fraud refusal (cooldown, daily limit, wrong or locked PIN), for the owner's dashboard."""

    __tablename__ = "loyalty_refusals"
    __table_args__ = (Index("ix_loyalty_refusals_program_created", "program_id", "created_at"),)

    id: Mapped[int] = pk()
    program_id: Mapped[int] = mapped_column(ForeignKey("loyalty_programs.id", ondelete="CASCADE"), nullable=False)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_cards.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    client_key: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, default=now)

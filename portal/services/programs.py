"""Loyalty programs and their rewards catalog."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..models import LoyaltyProgram, LoyaltyReward
from .actor import Actor
from .errors import NotFound, ProgramInactive, ValidationError
from .validation import SLUG_RE, Fields, slugify

RULE_LIMITS = {
    "stamps_required": (1, 100),
    "cooldown_minutes": (0, 24 * 60),
    "daily_stamp_limit": (0, 100),  # 0: no daily limit
    "pin_max_attempts": (1, 20),
    "pin_lockout_minutes": (1, 24 * 60),
}
MAX_REWARDS = 50


def _unique_slug(base: str, exclude_id: int | None = None) -> str:
    slug, n = base, 2
    while True:
        existing = db.session.scalar(select(LoyaltyProgram.id).where(LoyaltyProgram.slug == slug))
        if existing is None or existing == exclude_id:
            return slug
        slug = f"{base[:70]}-{n}"
        n += 1


def _parse_rewards(f: Fields) -> list[dict] | None:
    raw = f.raw("rewards")
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > MAX_REWARDS:
        f.error("rewards", _l("Must be a list of at most %(n)s rewards.", n=MAX_REWARDS))
        return None
    parsed = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            f.error(f"rewards.{index}", _l("Must be an object with a name and a points cost."))
            continue
        sub = Fields(item)
        name = sub.string("name", required=True, max_length=120)
        cost = sub.integer("points_cost", required=True, minimum=1, maximum=10_000_000)
        rid = sub.integer("id", minimum=1)
        active = sub.boolean("active", default=True)
        for key, messages in sub.errors.items():
            for message in messages:
                f.error(f"rewards.{index}.{key}", message)
        if not sub.errors:
            parsed.append({"id": rid, "name": name, "points_cost": cost, "active": active})
    return parsed


def _apply(program: LoyaltyProgram, f: Fields, *, creating: bool) -> list[dict] | None:
    if creating or f.has("name"):
        program.name = f.string("name", required=True, max_length=120) or program.name
    if f.has("description"):
        program.description = f.string("description", max_length=1000) or ""
    ptype = program.type
    if ptype == "stamps":
        if creating or f.has("stamps_required"):
            lo, hi = RULE_LIMITS["stamps_required"]
            program.stamps_required = f.integer("stamps_required", required=True, minimum=lo, maximum=hi,
                                                default=program.stamps_required)
        if creating or "reward_text" in f.data:
            program.reward_text = f.string("reward_text", required=True, max_length=200) or program.reward_text
    else:
        if creating or f.has("points_per_unit"):
            from decimal import Decimal

            program.points_per_unit = f.decimal("points_per_unit", required=True, minimum=Decimal("0.01"),
                                                maximum=Decimal("10000"), default=program.points_per_unit)
        if f.has("reward_text"):
            program.reward_text = f.string("reward_text", max_length=200) or ""
    for name in ("cooldown_minutes", "daily_stamp_limit", "pin_max_attempts", "pin_lockout_minutes"):
        if f.has(name):
            lo, hi = RULE_LIMITS[name]
            value = f.integer(name, minimum=lo, maximum=hi)
            if value is not None:
                setattr(program, name, value)
    for name in ("require_pin", "active"):
        if name in f.data and f.data[name] is not None:
            setattr(program, name, f.boolean(name, default=getattr(program, name)))
    for name in ("background_color", "foreground_color", "label_color"):
        value = f.color(name)
        if value:
            setattr(program, name, value)
    if f.has("currency"):
        currency = f.string("currency", max_length=3)
        if currency and len(currency) == 3 and currency.isalpha():
            program.currency = currency.upper()
        else:
            f.error("currency", _l("Use a three-letter currency code like EUR."))
    rewards = _parse_rewards(f) if ptype == "points" else None
    return rewards


def _sync_rewards(program: LoyaltyProgram, rewards: list[dict]) -> None:
    by_id = {r.id: r for r in program.rewards}
    seen = set()
    for item in rewards:
        if item["id"] and item["id"] in by_id:
            reward = by_id[item["id"]]
            reward.name, reward.points_cost, reward.active = item["name"], item["points_cost"], item["active"]
            seen.add(reward.id)
        else:
            reward = LoyaltyReward(program=program, name=item["name"], points_cost=item["points_cost"],
                                   active=item["active"])
            db.session.add(reward)
    # Rewards that disappear from the catalog are retired, not deleted: the ledger points at them.
    for reward in program.rewards:
        if reward.id is not None and reward.id not in seen and all(
                r["id"] != reward.id for r in rewards):
            reward.active = False


def create_program(actor: Actor, data: dict) -> LoyaltyProgram:
    f = Fields(data)
    ptype = f.choice("type", ("stamps", "points"), required=True)
    slug_in = f.string("slug", max_length=80, default=None)
    if slug_in and not SLUG_RE.match(slug_in):
        f.error("slug", _l("Use lowercase letters, digits and dashes."))
    if actor.vendor_id is None:
        f.error("vendor", _l("Programs belong to a shop."))
    if ptype is None:
        f.done()
    program = LoyaltyProgram(vendor_id=actor.vendor_id, type=ptype, require_pin=True, cooldown_minutes=15,
                             daily_stamp_limit=5, pin_max_attempts=5, pin_lockout_minutes=15, active=True,
                             reward_text="", description="", currency="EUR", background_color="#1f4e79",
                             foreground_color="#ffffff", label_color="#cfe3f5")
    rewards = _apply(program, f, creating=True)
    if ptype == "points" and not rewards:
        f.error("rewards", _l("Add at least one reward to the catalog."))
    f.done()
    if slug_in:
        if db.session.scalar(select(LoyaltyProgram.id).where(LoyaltyProgram.slug == slug_in)) is not None:
            raise ValidationError(fields={"slug": [_l("This address is already taken.")]})
        program.slug = slug_in
    else:
        program.slug = _unique_slug(slugify(program.name))
    db.session.add(program)
    db.session.flush()
    if rewards:
        _sync_rewards(program, rewards)
        db.session.flush()
    return program


def update_program(actor: Actor, program_id: int, data: dict) -> LoyaltyProgram:
    program = get_program(actor, program_id)
    f = Fields(data)
    if "type" in f.data and f.data["type"] != program.type:
        f.error("type", _l("The type of a program cannot change."))
    slug_in = f.string("slug", max_length=80, default=None)
    if slug_in and not SLUG_RE.match(slug_in):
        f.error("slug", _l("Use lowercase letters, digits and dashes."))
    rewards = _apply(program, f, creating=False)
    if rewards is not None and program.type == "points" and not any(r["active"] for r in rewards):
        f.error("rewards", _l("Add at least one reward to the catalog."))
    f.done()
    if slug_in and slug_in != program.slug:
        if _unique_slug(slug_in, exclude_id=program.id) != slug_in:
            raise ValidationError(fields={"slug": [_l("This address is already taken.")]})
        program.slug = slug_in
    if rewards is not None:
        _sync_rewards(program, rewards)
    db.session.flush()
    return program


def set_logo(actor: Actor, program_id: int, png: bytes | None) -> LoyaltyProgram:
    program = get_program(actor, program_id)
    if png is not None:
        if not png.startswith(b"\x89PNG\r\n\x1a\n") or len(png) > 512 * 1024:
            raise ValidationError(fields={"logo": [_l("Upload a PNG image of at most 512 KB.")]})
    program.logo_png = png
    db.session.flush()
    return program


def get_program(actor: Actor, program_id: int, *, for_update: bool = False) -> LoyaltyProgram:
    """The actor's program; another vendor's program is simply not found."""
    stmt = select(LoyaltyProgram).where(LoyaltyProgram.id == program_id)
    if actor.vendor_id is not None:
        stmt = stmt.where(LoyaltyProgram.vendor_id == actor.vendor_id)
    elif not actor.is_admin:
        raise NotFound()
    program = db.session.scalar(stmt)
    if program is None:
        raise NotFound()
    return program


def get_program_by_slug(slug: str) -> LoyaltyProgram:
    program = db.session.scalar(select(LoyaltyProgram).where(LoyaltyProgram.slug == slug))
    if program is None or not program.vendor.active:
        raise NotFound()
    return program


def list_programs(actor: Actor) -> list[LoyaltyProgram]:
    stmt = select(LoyaltyProgram).order_by(LoyaltyProgram.id)
    if actor.vendor_id is not None:
        stmt = stmt.where(LoyaltyProgram.vendor_id == actor.vendor_id)
    elif not actor.is_admin:
        return []
    # A list shows each program with its vendor and reward catalog: loaded here in two more statements, not one
    # per program.
    return list(db.session.scalars(stmt.options(joinedload(LoyaltyProgram.vendor),
                                                selectinload(LoyaltyProgram.rewards))))


def ensure_active(program: LoyaltyProgram) -> None:
    if not program.active or not program.vendor.active:
        raise ProgramInactive()


def active_rewards(program: LoyaltyProgram) -> list[LoyaltyReward]:
    return [r for r in program.rewards if r.active]

"""Loyalty programs and their rewards catalog."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..models import LoyaltyProgram, LoyaltyReward, ProgramSlug
from . import clock, wallet_outbox
from .actor import Actor
from .errors import NotFound, ProgramInactive, ValidationError
from .validation import SLUG_RE, Fields, slugify
from .wallet import images

RULE_LIMITS = {
    "stamps_required": (1, 100),
    "cooldown_minutes": (0, 24 * 60),
    "daily_stamp_limit": (0, 100),  # 0: no daily limit
    "pin_max_attempts": (1, 20),
    "pin_lockout_minutes": (1, 24 * 60),
}
MAX_REWARDS = 50
#: What of a program its wallet passes show (with its rewards catalog and its logo): a change is sent to every card.
DESIGN_FIELDS = ("name", "reward_text", "stamps_required", "background_color", "foreground_color", "label_color")
SLUG_TAKEN = _l("This address is already taken.")


def _slug_owner(slug: str) -> int | None:
    """The program that has or ever had ``slug`` (``loyalty_program_slugs``: a slug stays with its program)."""
    return db.session.scalar(select(ProgramSlug.program_id).where(ProgramSlug.slug == slug))


def _unique_slug(base: str) -> str:
    slug, n = base, 2
    while _slug_owner(slug) is not None:
        slug = f"{base[:70]}-{n}"
        n += 1
    return slug


def _claim_slug(program: LoyaltyProgram, slug: str) -> None:
    """Give ``program`` (new or not) ``slug`` and flush it in a savepoint. The unique slug and the trigger of
    ``loyalty_program_slugs`` refuse a slug another program has or had; when another request took it since we
    looked, that is the same "taken" as looking first (the savepoint keeps the transaction usable)."""
    db.session.flush()  # everything else first: begin_nested() would flush it outside the savepoint
    try:
        with db.session.begin_nested():
            program.slug = slug
            db.session.add(program)
            db.session.flush()
    except IntegrityError:
        if _slug_owner(slug) not in (None, program.id):
            raise ValidationError(fields={"slug": [SLUG_TAKEN]}) from None
        raise


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
    for name in ("require_pin", "active", "pending_signups"):
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
                             foreground_color="#ffffff", label_color="#cfe3f5", rewards=[])
    rewards = _apply(program, f, creating=True)
    if ptype == "points" and not rewards:
        f.error("rewards", _l("Add at least one reward to the catalog."))
    f.done()
    if slug_in and _slug_owner(slug_in) is not None:
        raise ValidationError(fields={"slug": [SLUG_TAKEN]})
    _claim_slug(program, slug_in or _unique_slug(slugify(program.name)))
    if rewards:
        _sync_rewards(program, rewards)
        db.session.flush()
    return program


def _design(program: LoyaltyProgram) -> tuple:
    return (tuple(getattr(program, name) for name in DESIGN_FIELDS),
            tuple((r.id, r.name, r.points_cost, r.active) for r in program.rewards))


def _design_changed(program: LoyaltyProgram) -> None:
    """The passes in wallets show the program: queue an update of every card (coalesced), in this transaction.
    ``updated_at`` is set even when only a reward (its own row) changed: it is the passes' Last-Modified and what
    Apple's "which passes changed" compares."""
    program.updated_at = clock.now()
    db.session.flush()
    wallet_outbox.enqueue_program(program.id, "design")


def update_program(actor: Actor, program_id: int, data: dict, *, validate_only: bool = False) -> LoyaltyProgram:
    """Apply ``data`` to the program. ``validate_only``: the caller rolls back (inline validation), so the wallet
    updates of a design change are not queued just to be thrown away."""
    program = get_program(actor, program_id, rewards=True)
    design_before = _design(program)
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
        # The old slug stays this program's (its posters keep working); a slug another program has or ever had
        # is taken, while this program may go back to one of its own.
        if _slug_owner(slug_in) not in (None, program.id):
            raise ValidationError(fields={"slug": [SLUG_TAKEN]})
        _claim_slug(program, slug_in)
    if rewards is not None:
        _sync_rewards(program, rewards)
    db.session.flush()
    if _design(program) != design_before and not validate_only:
        _design_changed(program)
    return program


def set_logo(actor: Actor, program_id: int, png: bytes | None) -> LoyaltyProgram:
    """Store (or with None remove) the program's logo: its declared size is checked before it is decoded, and
    what is stored is re-encoded (``images.normalise_logo``)."""
    program = get_program(actor, program_id)
    if png is not None:
        try:
            png = images.normalise_logo(png)
        except images.LogoError as error:
            if error.reason == "too_large":
                message = _l("This image is %(width)s × %(height)s pixels: a logo may have at most %(max)s "
                             "pixels on a side.", width=error.size[0], height=error.size[1],
                             max=images.MAX_LOGO_SIDE)
            elif error.reason == "unreadable":
                message = _l("This PNG image could not be read. Please save it again and upload it.")
            else:
                message = _l("Upload a PNG image of at most 512 KB.")
            raise ValidationError(fields={"logo": [message]}) from None
    changed = (bytes(program.logo_png) if program.logo_png is not None else None) != png
    program.logo_png = png
    db.session.flush()
    if changed:
        _design_changed(program)
    return program


def get_program(actor: Actor, program_id: int, *, rewards: bool = False) -> LoyaltyProgram:
    """The actor's program, with its vendor (and its reward catalog with ``rewards``: the pages, passes and
    answers that show it); another vendor's program is simply not found."""
    stmt = select(LoyaltyProgram).where(LoyaltyProgram.id == program_id).options(joinedload(LoyaltyProgram.vendor))
    if rewards:
        stmt = stmt.options(selectinload(LoyaltyProgram.rewards))
    if actor.vendor_id is not None:
        stmt = stmt.where(LoyaltyProgram.vendor_id == actor.vendor_id)
    elif not actor.is_admin:
        raise NotFound()
    program = db.session.scalar(stmt)
    if program is None:
        raise NotFound()
    return program


def get_program_by_slug(slug: str, *, rewards: bool = False) -> LoyaltyProgram:
    """The program whose slug is or ever was ``slug`` (a renamed program's posters still reach it), with its
    vendor (and its reward catalog with ``rewards``): callers that show an address compare ``program.slug`` with
    what they were given and redirect to the current one."""
    stmt = (select(LoyaltyProgram).join(ProgramSlug, ProgramSlug.program_id == LoyaltyProgram.id)
            .where(ProgramSlug.slug == slug).options(joinedload(LoyaltyProgram.vendor)))
    if rewards:
        stmt = stmt.options(selectinload(LoyaltyProgram.rewards))
    program = db.session.scalar(stmt)
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
    """The rewards a customer can choose, cheapest first (one query: the pages that show them load nothing
    else of the catalog)."""
    return list(db.session.scalars(select(LoyaltyReward).where(LoyaltyReward.program_id == program.id,
                                                               LoyaltyReward.active.is_(True))
                                   .order_by(LoyaltyReward.points_cost)))

"""Demo data: a Luxembourg café with a stamp program (PIN required) and a points program, staff, cards, history."""
from __future__ import annotations

import datetime as dt
import json
import random
import secrets
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, select

from ..extensions import db
from ..models import (ApiKey, AppleDeviceRegistration, IdempotencyRecord, LoyaltyCard, LoyaltyProgram,
                      LoyaltyReward, LoyaltyTransaction, PinLockout, Refusal, RetiredCard, StaffPin, User, Vendor,
                      WalletOutbox)
from . import accounts, cards, clock, operations, pins, programs
from .actor import Actor

DEMO_SLUG = "cafe-am-eck"
OWNER_EMAIL = "owner@cafe-am-eck.lu"
ADMIN_EMAIL = "admin@loyalty.example"
CUSTOMERS = [
    ("Marie Schmit", "marie.schmit@example.lu", "fr"),
    ("Jean Weber", "jean.weber@example.lu", "lb"),
    ("Sophie Muller", "sophie.muller@example.lu", "de"),
    ("Luc Hoffmann", "luc.hoffmann@example.lu", "lb"),
    ("Anne Wagner", "anne.wagner@example.lu", "en"),
    ("Paul Klein", "paul.klein@example.lu", "fr"),
]


def _state_file() -> Path:
    return Path(current_app.instance_path) / "demo.json"


def exists() -> bool:
    return db.session.scalar(select(Vendor.id).where(Vendor.slug == DEMO_SLUG)) is not None


def load_saved() -> dict | None:
    path = _state_file()
    if path.exists() and exists():
        return json.loads(path.read_text())
    return None


def remove() -> None:
    """Delete the demo vendor and everything that hangs off it, its ledger included (see ledger_admin)."""
    vendor = db.session.scalar(select(Vendor).where(Vendor.slug == DEMO_SLUG))
    admin = db.session.scalar(select(User).where(User.email == ADMIN_EMAIL))
    if vendor is not None:
        program_ids = list(db.session.scalars(select(LoyaltyProgram.id).where(LoyaltyProgram.vendor_id == vendor.id)))
        card_ids = list(db.session.scalars(select(LoyaltyCard.id).where(LoyaltyCard.program_id.in_(program_ids))))
        serials = list(db.session.scalars(select(LoyaltyCard.apple_serial).where(LoyaltyCard.id.in_(card_ids))))
        serials += db.session.scalars(select(RetiredCard.apple_serial).where(RetiredCard.card_id.in_(card_ids)))
        from .ledger_admin import delete_ledger_rows

        delete_ledger_rows(card_ids)
        db.session.execute(delete(AppleDeviceRegistration).where(AppleDeviceRegistration.serial_number.in_(serials)))
        db.session.execute(delete(WalletOutbox).where(WalletOutbox.card_id.in_(card_ids)))
        db.session.execute(delete(Refusal).where(Refusal.program_id.in_(program_ids)))
        db.session.execute(delete(PinLockout).where(PinLockout.program_id.in_(program_ids)))
        db.session.execute(delete(StaffPin).where(StaffPin.program_id.in_(program_ids)))
        db.session.execute(delete(LoyaltyCard).where(LoyaltyCard.id.in_(card_ids)))
        db.session.execute(delete(LoyaltyReward).where(LoyaltyReward.program_id.in_(program_ids)))
        db.session.execute(delete(LoyaltyProgram).where(LoyaltyProgram.id.in_(program_ids)))
        db.session.execute(delete(ApiKey).where(ApiKey.vendor_id == vendor.id))
        db.session.execute(delete(User).where(User.vendor_id == vendor.id))
        db.session.execute(delete(Vendor).where(Vendor.id == vendor.id))
    if admin is not None:
        db.session.execute(delete(ApiKey).where(ApiKey.scope == "admin", ApiKey.name == "demo"))
        db.session.execute(delete(User).where(User.id == admin.id))
    db.session.execute(delete(IdempotencyRecord))
    db.session.flush()
    db.session.expunge_all()


def create() -> dict:
    owner_password = secrets.token_urlsafe(9)
    admin_password = secrets.token_urlsafe(9)
    staff_password = secrets.token_urlsafe(9)
    vendor, owner = accounts.create_vendor(name="Café am Eck", owner_email=OWNER_EMAIL,
                                           owner_password=owner_password, timezone="Europe/Luxembourg",
                                           locale="en", slug=DEMO_SLUG)
    owner.name = "Claire Thill"
    admin = accounts.create_admin(ADMIN_EMAIL, admin_password)
    admin.name = "Platform operator"
    staff_user = accounts.create_user(email="staff@cafe-am-eck.lu", password=staff_password, role="staff",
                                      vendor=vendor, name="Tablet at the counter")
    actor = accounts.actor_for_user(owner)
    stamp = programs.create_program(actor, {
        "type": "stamps", "name": "Coffee card", "slug": "cafe-am-eck-coffee", "stamps_required": 10,
        "reward_text": "A free coffee of your choice", "require_pin": True, "cooldown_minutes": 15,
        "daily_stamp_limit": 5, "description": "One stamp per hot drink. The tenth coffee is on us."})
    points = programs.create_program(actor, {
        "type": "points", "name": "Bakery points", "slug": "cafe-am-eck-bakery", "points_per_unit": "1.00",
        "require_pin": False, "background_color": "#7a3e12", "label_color": "#f3d9b1",
        "rewards": [{"name": "Croissant", "points_cost": 20}, {"name": "Pain au chocolat", "points_cost": 25},
                    {"name": "Birthday cake", "points_cost": 150}]})
    staff = []
    for program in (stamp, points):
        for name in ("Anna", "Tom"):
            row, pin = pins.create_pin(actor, program.id, {"staff_name": name})
            staff.append({"id": row.id, "name": name, "pin": pin, "program_slug": program.slug})
    _, vendor_key = accounts.create_api_key(vendor=vendor, name="demo")
    _, admin_key = accounts.create_api_key(vendor=None, name="demo")
    card_rows = _history(vendor, actor, stamp, points, staff)
    base = current_app.config["PUBLIC_BASE_URL"]
    result = {
        "base_url": base,
        "vendor": {"id": vendor.id, "slug": vendor.slug, "name": vendor.name},
        "owner": {"email": OWNER_EMAIL, "password": owner_password, "login_url": f"{base}/login"},
        "staff_user": {"email": "staff@cafe-am-eck.lu", "password": staff_password, "tablet_url": f"{base}/tablet"},
        "admin": {"email": ADMIN_EMAIL, "password": admin_password, "login_url": f"{base}/login"},
        "vendor_api_key": vendor_key,
        "admin_api_key": admin_key,
        "programs": [{"id": p.id, "slug": p.slug, "type": p.type, "enroll_url": f"{base}/p/{p.slug}"}
                     for p in (stamp, points)],
        "staff": staff,
        "cards": card_rows,
    }
    return result


def _history(vendor: Vendor, owner_actor: Actor, stamp: LoyaltyProgram, points: LoyaltyProgram,
             staff: list[dict]) -> list[dict]:
    rng = random.Random(7)
    now = clock.now()
    rows = []
    stamp_pins = [s for s in staff if s["program_slug"] == stamp.slug]
    api_actor = Actor(vendor_id=vendor.id, role="owner", user_id=owner_actor.user_id, name=owner_actor.name)
    reward = programs.active_rewards(points)[0]  # the cheapest
    for index, (name, email, locale) in enumerate(CUSTOMERS):
        program = stamp if index % 3 != 2 else points
        start = now - dt.timedelta(days=28 - index * 2, hours=3)
        with clock.pinned(start):
            card, _ = cards.enroll(program, {"name": name, "email": email, "locale": locale})
        visits = rng.randint(3, 12)
        for visit in range(visits):
            moment = start + dt.timedelta(days=visit * 2 + 1, hours=rng.randint(0, 8), minutes=rng.randint(0, 59))
            if moment >= now - dt.timedelta(hours=1):
                break
            with clock.pinned(moment):
                if program.type == "stamps":
                    who = stamp_pins[visit % len(stamp_pins)]
                    card, _ = operations.add_stamps(api_actor, card.card_number, {"staff_pin": who["pin"]})
                    if card.stamps >= stamp.stamps_required and rng.random() < 0.5:
                        operations.redeem_stamps(api_actor, card.card_number, {"staff_pin": who["pin"]})
                else:
                    amount = f"{rng.randint(3, 40)}.{rng.randint(0, 99):02d}"
                    card, _ = operations.earn_points(api_actor, card.card_number, {"amount": amount})
                    if card.points >= reward.points_cost + 10 and rng.random() < 0.4:
                        operations.redeem_points(api_actor, card.card_number, {"reward_id": reward.id})
        rows.append({"card_number": card.card_number, "program_slug": program.slug, "customer": name,
                     "card_url": f"{current_app.config['PUBLIC_BASE_URL']}/c/{card.public_token}"})
    return rows


def save(result: dict) -> None:
    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    path.chmod(0o600)

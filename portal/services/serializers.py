"""JSON shapes of the API (documented in portal/api_spec/openapi.json)."""
from __future__ import annotations

from flask import current_app

from ..models import LoyaltyCard, LoyaltyProgram, LoyaltyReward, LoyaltyTransaction, StaffPin, Vendor


def _iso(value):
    return value.isoformat() if value is not None else None


def card_url(card: LoyaltyCard) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/c/{card.public_token}"


def reward_to_dict(reward: LoyaltyReward) -> dict:
    return {"id": reward.id, "name": reward.name, "points_cost": reward.points_cost, "active": reward.active}


def program_to_dict(program: LoyaltyProgram, *, public: bool = False) -> dict:
    data = {
        "id": program.id,
        "slug": program.slug,
        "name": program.name,
        "description": program.description,
        "type": program.type,
        "stamps_required": program.stamps_required,
        "reward_text": program.reward_text,
        "points_per_unit": None if program.points_per_unit is None else f"{program.points_per_unit:.2f}",
        "currency": program.currency,
        "rewards": [reward_to_dict(r) for r in program.rewards if r.active or not public],
        "active": program.active,
        "vendor": {"name": program.vendor.name, "slug": program.vendor.slug},
        "enroll_url": f"{current_app.config['PUBLIC_BASE_URL']}/p/{program.slug}",
        "colors": {"background": program.background_color, "foreground": program.foreground_color,
                   "label": program.label_color},
    }
    if not public:
        data.update({
            "vendor_id": program.vendor_id,
            "require_pin": program.require_pin,
            "pending_signups": program.pending_signups,
            "cooldown_minutes": program.cooldown_minutes,
            "daily_stamp_limit": program.daily_stamp_limit,
            "pin_max_attempts": program.pin_max_attempts,
            "pin_lockout_minutes": program.pin_lockout_minutes,
            "created_at": _iso(program.created_at),
            "updated_at": _iso(program.updated_at),
        })
    return data


def card_to_dict(card: LoyaltyCard, *, include_customer: bool = True) -> dict:
    program = card.program
    data = {
        "card_number": card.card_number,
        "program_id": program.id,
        "program_slug": program.slug,
        "type": program.type,
        "stamps": card.stamps,
        "points": card.points,
        "balance": card.balance,
        "stamps_required": program.stamps_required,
        "reward_available": (program.type == "stamps" and card.stamps >= (program.stamps_required or 0)),
        "lifetime_stamps": card.lifetime_stamps,
        "lifetime_points": card.lifetime_points,
        "rewards_redeemed": card.rewards_redeemed,
        "pending": card.pending,
        "confirmed_at": _iso(card.confirmed_at),
        "card_url": card_url(card),
        "created_at": _iso(card.created_at),
        "updated_at": _iso(card.updated_at),
    }
    if include_customer:
        data["customer"] = {"name": card.customer_name, "email": card.customer_email,
                            "phone": card.customer_phone, "locale": card.locale}
    return data


def transaction_to_dict(tx: LoyaltyTransaction) -> dict:
    return {
        "id": tx.id,
        "card_id": tx.card_id,
        "type": tx.type,
        "delta": tx.delta,
        "balance_after": tx.balance_after,
        "amount": None if tx.amount is None else f"{tx.amount:.2f}",
        "reward_id": tx.reward_id,
        "staff_pin_id": tx.staff_pin_id,
        "staff_name": tx.staff_name,
        "note": tx.display_note,
        "voided_transaction_id": tx.voided_transaction_id,
        "created_at": _iso(tx.created_at),
        "hash": tx.hash,
    }


def pin_to_dict(pin: StaffPin, *, now=None, lockouts=None) -> dict:
    return {"id": pin.id, "program_id": pin.program_id, "staff_name": pin.staff_name, "active": pin.active,
            "user_id": pin.user_id, "created_at": _iso(pin.created_at), "last_used_at": _iso(pin.last_used_at)}


def vendor_to_dict(vendor: Vendor) -> dict:
    return {"id": vendor.id, "name": vendor.name, "slug": vendor.slug, "timezone": vendor.timezone,
            "locale": vendor.locale, "active": vendor.active, "created_at": _iso(vendor.created_at)}

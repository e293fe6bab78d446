"""A shop's staff user accounts (role staff: they can only use the tablet page)."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import User
from .actor import Actor
from .errors import Forbidden, NotFound
from . import accounts


def _owner(actor: Actor) -> None:
    if actor.role != "owner" or actor.vendor_id is None:
        raise Forbidden()


def list_staff_users(actor: Actor) -> list[User]:
    _owner(actor)
    return list(db.session.scalars(select(User).where(User.vendor_id == actor.vendor_id, User.role == "staff")
                                   .order_by(User.email)))


def create_staff_user(actor: Actor, data: dict) -> User:
    _owner(actor)
    vendor = accounts.get_vendor(actor.vendor_id)
    return accounts.create_user(email=data.get("email") or "", password=data.get("password") or "", role="staff",
                                vendor=vendor, name=(data.get("name") or "").strip() or None,
                                locale=data.get("locale") or None)


def get_staff_user(actor: Actor, user_id: int) -> User:
    _owner(actor)
    user = db.session.scalar(select(User).where(User.id == user_id, User.vendor_id == actor.vendor_id,
                                                User.role == "staff"))
    if user is None:
        raise NotFound()
    return user


def set_staff_user_active(actor: Actor, user_id: int, active: bool) -> User:
    """Deactivating a staff account ends its sessions at the next request (Flask-Login checks ``is_active``)."""
    user = get_staff_user(actor, user_id)
    user.active = active
    db.session.flush()
    return user

"""A shop's staff user accounts (role staff: they can only use the tablet page)."""
from __future__ import annotations

from sqlalchemy import select, update

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


def create_staff_user(actor: Actor, data: dict) -> User | None:
    """A tablet login for the owner's shop; None (nothing created, and the answer must look the same) when the
    address already is a login elsewhere on the platform (``accounts.create_shop_user``)."""
    _owner(actor)
    vendor = accounts.get_vendor(actor.vendor_id)
    return accounts.create_shop_user(email=data.get("email") or "", password=data.get("password") or "",
                                     role="staff", vendor=vendor, name=(data.get("name") or "").strip() or None,
                                     locale=data.get("locale") or None)


def get_staff_user(actor: Actor, user_id: int) -> User:
    _owner(actor)
    user = db.session.scalar(select(User).where(User.id == user_id, User.vendor_id == actor.vendor_id,
                                                User.role == "staff"))
    if user is None:
        raise NotFound()
    return user


def set_staff_user_active(actor: Actor, user_id: int, active: bool) -> User:
    """Deactivating a staff account ends its sessions for good: enabling it again does not revive them."""
    user = get_staff_user(actor, user_id)
    user.active = active
    if not active:
        accounts.end_sessions(user)
    db.session.flush()
    return user


def log_out_everywhere(actor: Actor) -> int:
    """End every session of every login of the owner's shop (the owner's own and all staff accounts), on every
    device; returns how many logins. The caller logs the owner's current session in again."""
    _owner(actor)
    result = db.session.execute(update(User).where(User.vendor_id == actor.vendor_id)
                                .values(session_version=User.session_version + 1)
                                .execution_options(synchronize_session="fetch"))
    return result.rowcount

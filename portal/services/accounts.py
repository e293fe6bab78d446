"""Vendors, users, logins and API keys."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from .. import storage
from ..extensions import db
from ..models import ApiKey, User, Vendor
from . import clock
from .actor import Actor
from .errors import NotFound, ValidationError
from .i18n import SUPPORTED, normalise_locale
from .security import api_key_digest, check_password, hash_password, new_api_key
from .validation import Fields, slugify

MIN_PASSWORD = 10


def _check_password_strength(fields: Fields, name: str, password: str | None) -> None:
    if password is not None and len(password) < MIN_PASSWORD:
        fields.error(name, _l("At least %(n)s characters.", n=MIN_PASSWORD))


def _email_taken(email: str) -> bool:
    return db.session.scalar(select(func.count()).select_from(User).where(User.email == email)) > 0


def _new_user_fields(*, email: str, password: str, role: str, vendor: Vendor | None,
                     name: str | None) -> tuple[str, str, str | None]:
    f = Fields({"email": email, "password": password, "name": name})
    email_value = f.email("email", required=True)
    password_value = f.string("password", required=True, max_length=200, strip=False)
    _check_password_strength(f, "password", password_value)
    name_value = f.string("name", max_length=120, default=None)
    if role not in ("admin", "owner", "staff"):
        f.error("role", _l("Unknown role."))
    if role != "admin" and vendor is None:
        f.error("vendor", _l("This field is required."))
    f.done()
    return email_value, password_value, name_value


def create_user(*, email: str, password: str, role: str, vendor: Vendor | None = None, name: str | None = None,
                locale: str | None = None) -> User:
    email_value, password_value, name_value = _new_user_fields(email=email, password=password, role=role,
                                                               vendor=vendor, name=name)
    if _email_taken(email_value):
        raise ValidationError(fields={"email": [_l("This email already has an account.")]})
    return _add_user(email_value, password_value, role, vendor, name_value, locale)


def _add_user(email: str, password: str, role: str, vendor: Vendor | None, name: str | None,
              locale: str | None) -> User:
    user = User(email=email, password_hash=hash_password(password), role=role,
                vendor_id=vendor.id if vendor else None, name=name, locale=normalise_locale(locale))
    db.session.add(user)
    db.session.flush()
    return user


def create_shop_user(*, vendor: Vendor, email: str, password: str, role: str, name: str | None = None,
                     locale: str | None = None) -> User | None:
    """A new login of ``vendor``'s shop, asked for by its owner — who must not learn whether an address has a login
    elsewhere on the platform (docs/security.md, "Account discovery"). Logins are unique on the platform: for an
    address that is another shop's login (or an operator's) nothing is created and None is returned, after the
    same checks and the same bcrypt work as a creation, and the caller answers exactly as for a new login. An
    address that is already a login of this shop is refused: the owner sees those anyway."""
    email_value, password_value, name_value = _new_user_fields(email=email, password=password, role=role,
                                                               vendor=vendor, name=name)
    holder = db.session.execute(select(User.vendor_id).where(User.email == email_value)).first()
    if holder is None:
        return _add_user(email_value, password_value, role, vendor, name_value, locale)
    if holder.vendor_id == vendor.id:
        raise ValidationError(fields={"email": [_l("This email already has an account.")]})
    hash_password(password_value)  # the work a creation does, so the time taken does not tell either
    return None


def create_admin(email: str, password: str) -> User:
    return create_user(email=email, password=password, role="admin")


def _unique_vendor_slug(base: str) -> str:
    slug, n = base, 2
    while db.session.scalar(select(Vendor.id).where(Vendor.slug == slug)) is not None:
        slug = f"{base}-{n}"
        n += 1
    return slug


def create_vendor(*, name: str, owner_email: str, owner_password: str, timezone: str = "Europe/Luxembourg",
                  locale: str = "en", slug: str | None = None) -> tuple[Vendor, User]:
    f = Fields({"name": name, "timezone": timezone, "locale": locale})
    name_value = f.string("name", required=True, max_length=120)
    tz = f.string("timezone", max_length=64, default="Europe/Luxembourg")
    if tz and clock.zone(tz) is clock.UTC and tz.upper() != "UTC":
        f.error("timezone", _l("Unknown timezone."))
    loc = normalise_locale(locale)
    if loc is None:
        f.error("locale", _l("Must be one of: %(choices)s.", choices=", ".join(SUPPORTED)))
    f.done()
    vendor = Vendor(name=name_value, slug=_unique_vendor_slug(slugify(slug or name_value)), timezone=tz, locale=loc)
    db.session.add(vendor)
    db.session.flush()
    owner = create_user(email=owner_email, password=owner_password, role="owner", vendor=vendor)
    return vendor, owner


def authenticate(email: str, password: str) -> User | None:
    """The user for these credentials, or None. Costs one bcrypt check whether or not the email exists."""
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower())
                            .options(joinedload(User.vendor)))
    ok = check_password(password or "", user.password_hash if user else None)
    if not ok or user is None or not user.active:
        return None
    if user.vendor is not None and not user.vendor.active:
        return None
    user.last_login_at = clock.now()
    return user


def change_password(user: User, current: str, new: str) -> None:
    """A new password; every session of the login ends (the caller logs the current one in again)."""
    f = Fields({"new_password": new})
    if not check_password(current or "", user.password_hash):
        f.error("current_password", _l("The current password is wrong."))
    new_value = f.string("new_password", required=True, strip=False)
    _check_password_strength(f, "new_password", new_value)
    f.done()
    user.password_hash = hash_password(new_value)
    end_sessions(user)


# --- sessions: the cookie holds "<user id>:<session_version>" (User.get_id); raising the number ends them all ---

def user_for_session(session_id: str | None) -> User | None:
    """The user a session's id stands for, or None when that login's sessions were ended since it was issued
    (or the id is malformed, e.g. a cookie from before session versions)."""
    user_id, sep, version = (session_id or "").partition(":")
    if not sep or not user_id.isdigit() or not version.isdigit():
        return None
    # Every logged-in page checks the user's vendor (suspended?): loaded with the user, nothing more.
    user = db.session.get(User, int(user_id), options=[joinedload(User.vendor)], populate_existing=True)
    if user is None or user.session_version != int(version):
        return None
    return user


def end_sessions(user: User) -> None:
    """End every session of this login, on every device (a copied cookie included)."""
    user.session_version = User.session_version + 1
    db.session.flush()
    db.session.refresh(user, ["session_version"])


def log_out(user: User | None) -> None:
    """Logging out ends this login's sessions everywhere: a cookie is a bearer credential, and one copied before
    the logout must not keep working."""
    if user is not None:
        end_sessions(user)


def create_api_key(*, vendor: Vendor | None, name: str = "") -> tuple[ApiKey, str]:
    """A new key; the plaintext is returned once and never stored."""
    plaintext = new_api_key()
    key = ApiKey(scope="vendor" if vendor else "admin", vendor_id=vendor.id if vendor else None, name=name,
                 prefix=plaintext[:10], key_hash=api_key_digest(plaintext))
    db.session.add(key)
    db.session.flush()
    return key, plaintext


@dataclass(frozen=True)
class ResolvedApiKey:
    """What a request needs of its API key and the key's vendor."""

    id: int
    scope: str
    vendor_id: int | None
    name: str
    vendor_active: bool
    vendor_locale: str | None


def resolve_api_key(plaintext: str) -> ResolvedApiKey | None:
    """The live (not revoked) key with this plaintext, or None: one indexed look-up by digest, key and vendor
    together, on every API request before its view. Nothing is cached, so a revoked key or a suspended vendor
    is refused from the next request on, whatever made the change."""
    if not plaintext or len(plaintext) > 200:
        return None
    row = storage.api_key_row(api_key_digest(plaintext))
    if row is None:
        return None
    return ResolvedApiKey(id=row[0], scope=row[1], vendor_id=row[2], name=row[3] or "",
                          vendor_active=bool(row[4]) if row[2] is not None else True, vendor_locale=row[5])


def actor_for_api_key(key: ApiKey | ResolvedApiKey) -> Actor:
    if key.scope == "admin":
        return Actor(vendor_id=None, role="admin", api_key_id=key.id, name=key.name or "admin API key")
    return Actor(vendor_id=key.vendor_id, role="api", api_key_id=key.id, name=key.name or "API")


def actor_for_user(user: User) -> Actor:
    return Actor(vendor_id=user.vendor_id, role=user.role, user_id=user.id, name=user.display_name)


def get_vendor_by_slug(slug: str) -> Vendor:
    vendor = db.session.scalar(select(Vendor).where(Vendor.slug == slug))
    if vendor is None:
        raise NotFound()
    return vendor


def get_vendor(vendor_id: int) -> Vendor:
    vendor = db.session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound()
    return vendor


def set_vendor_active(vendor: Vendor, active: bool) -> Vendor:
    vendor.active = active
    vendor.suspended_at = None if active else clock.now()
    return vendor


def list_vendors() -> list[Vendor]:
    return list(db.session.scalars(select(Vendor).order_by(Vendor.name).options(selectinload(Vendor.programs))))

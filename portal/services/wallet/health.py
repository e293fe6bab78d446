"""Pass health: what the passes of a card did, for the owner's card page, the dashboard and the API.

Recorded (one ``wallet_pass_health`` row per card, created on first use with ``INSERT … ON CONFLICT DO NOTHING``
then updated, so concurrent writers never collide):

* Apple — the first device registration (so a card whose registrations are all gone counts as "updates turned
  off"), each unregistration, the last fetch of the pass by a device (web service GET, 200 or 304), the last
  push round's result and the push tokens APNs called gone (410) and the worker deleted;
* Google — the last save or delete, from Google's signed callbacks (``google_callbacks``), with counts.

How many devices hold the pass now is the ``apple_device_registrations`` table itself.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading

import requests
from flask import current_app
from sqlalchemy import and_, delete, distinct, exists, func, select, update
from sqlalchemy.orm import Session

from ... import storage
from ...extensions import db
from ...models import AppleDeviceRegistration, GoogleCallbackNonce, LoyaltyCard, LoyaltyProgram, PassHealth
from .. import clock
from ..actor import Actor
from ..errors import CallbackKeysUnavailable
from . import google_callbacks
from .settings import cache, setting

log = logging.getLogger(__name__)

#: Nonces are kept this long: a callback's own expiry (expTimeMillis) is far shorter, so an older repeat is refused
#: as expired anyway.
NONCE_RETENTION = dt.timedelta(days=30)
#: Google's root keys are fetched again after this long even if they expire later, and at most this often when a
#: callback's intermediate key is signed by none we hold (a rotation).
ROOT_KEYS_MAX_AGE = dt.timedelta(hours=24)
ROOT_KEYS_REFETCH_GAP = dt.timedelta(seconds=60)

_ZERO = {"apple_unregistrations": 0, "apple_tokens_pruned": 0, "google_saves": 0, "google_deletes": 0}


def _upsert(session: Session, card_id: int, values: dict | None = None, add: dict | None = None) -> None:
    session.execute(storage.dialect_insert(PassHealth).values(card_id=card_id, **_ZERO)
                    .on_conflict_do_nothing(index_elements=["card_id"]))
    changes = dict(values or {})
    for name, amount in (add or {}).items():
        changes[name] = getattr(PassHealth, name) + amount
    if changes:
        session.execute(update(PassHealth).where(PassHealth.card_id == card_id).values(**changes))


def _card_id(serial: str) -> int | None:
    return db.session.scalar(select(LoyaltyCard.id).where(LoyaltyCard.apple_serial == serial))


# --- Apple --------------------------------------------------------------------------------------------------------

def apple_registered(serial: str) -> None:
    card_id = _card_id(serial)
    if card_id is not None:
        _upsert(db.session, card_id, {"apple_first_registered_at": func.coalesce(
            PassHealth.apple_first_registered_at, clock.now())})


def apple_unregistered(serial: str) -> None:
    card_id = _card_id(serial)
    if card_id is not None:
        _upsert(db.session, card_id, {"apple_unregistered_at": clock.now()}, {"apple_unregistrations": 1})


def apple_fetched(card: LoyaltyCard) -> None:
    """A device fetched (or checked, 304) the card's current pass."""
    _upsert(db.session, card.id, {"apple_last_fetched_at": clock.now()})


def record_push(session: Session, card_id: int, result: str, pruned: int) -> None:
    """The wallet worker's outcome for one card's push round (in its record transaction)."""
    _upsert(session, card_id, {"apple_last_push_at": clock.now(), "apple_last_push_result": result[:200]},
            {"apple_tokens_pruned": pruned} if pruned else None)


# --- Google callbacks ---------------------------------------------------------------------------------------------

class RootKeyStore:
    """Google's root signing keys, fetched from ``GOOGLE_CALLBACK_KEYS_URL`` and kept until the first of them
    expires (their own ``keyExpiration``), at most ``ROOT_KEYS_MAX_AGE``. One per application."""

    def __init__(self, url: str):
        self.url = url
        self.keys: list[google_callbacks.RootKey] = []
        self.fetched_at: dt.datetime | None = None
        self.valid_until: dt.datetime | None = None
        self.lock = threading.Lock()

    def _fetch(self, now: dt.datetime) -> None:
        try:
            response = requests.get(self.url, timeout=10)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("wallet: Google's callback keys could not be fetched from %s: %s", self.url, exc)
            raise CallbackKeysUnavailable(retry_after=60) from exc
        now_ms = int(now.timestamp() * 1000)
        keys = google_callbacks.parse_root_keys(document, now_ms)
        if not keys:
            log.warning("wallet: %s lists no valid %s key", self.url, google_callbacks.PROTOCOL)
            raise CallbackKeysUnavailable(retry_after=60)
        first_expiry = dt.datetime.fromtimestamp(min(k.expires_ms for k in keys) / 1000, dt.timezone.utc)
        self.keys, self.fetched_at = keys, now
        self.valid_until = min(first_expiry, now + ROOT_KEYS_MAX_AGE)

    def get(self, *, refresh: bool = False) -> list[google_callbacks.RootKey]:
        now = clock.now()
        with self.lock:
            stale = self.valid_until is None or now >= self.valid_until or now < self.fetched_at
            if stale or (refresh and now - self.fetched_at >= ROOT_KEYS_REFETCH_GAP):
                self._fetch(now)
            return self.keys


def root_keys(app=None) -> RootKeyStore:
    app = app or current_app
    state = cache(app)
    with state["lock"]:
        store = state.get("google_root_keys")
        if store is None:
            store = state["google_root_keys"] = RootKeyStore(str(setting("GOOGLE_CALLBACK_KEYS_URL", app)))
        return store


def _card_for_object(object_id: str) -> int | None:
    issuer = str(current_app.config.get("GOOGLE_WALLET_ISSUER_ID") or "").strip()
    if not issuer or not object_id.startswith(issuer + "."):
        return None
    serial = object_id[len(issuer) + 1:]
    return db.session.scalar(select(LoyaltyCard.id).where(
        (LoyaltyCard.google_object_id == object_id) | (LoyaltyCard.apple_serial == serial)).limit(1))


def google_callback(body: bytes) -> dict:
    """Verify a callback and record it. ``{"status": "accepted"}``; ``"duplicate"`` for a nonce seen before (not
    recorded again); ``"ignored"`` for an object that is no card of ours. Raises the ``Callback…`` errors."""
    issuer = str(current_app.config.get("GOOGLE_WALLET_ISSUER_ID") or "").strip()
    sealed = google_callbacks.parse(body)  # a malformed body never makes us fetch keys
    store = root_keys()
    now_ms = int(clock.now().timestamp() * 1000)
    try:
        message = google_callbacks.verify(sealed, store.get(), issuer, now_ms)
    except google_callbacks.UnknownSigner:
        # Perhaps Google rotated its keys since we fetched them: fetch again (at most once a minute) and retry.
        message = google_callbacks.verify(sealed, store.get(refresh=True), issuer, now_ms)
    now = clock.now()
    claimed = db.session.execute(storage.dialect_insert(GoogleCallbackNonce)
                                 .values(nonce=message.nonce, received_at=now)
                                 .on_conflict_do_nothing(index_elements=["nonce"])
                                 .returning(GoogleCallbackNonce.id)).scalar()
    if claimed is None:
        return {"status": "duplicate", "code": "callback_duplicate"}
    db.session.execute(delete(GoogleCallbackNonce).where(GoogleCallbackNonce.received_at < now - NONCE_RETENTION))
    card_id = _card_for_object(message.object_id)
    if card_id is None:
        log.info("wallet: Google callback for an unknown object %s ignored", message.object_id)
        return {"status": "ignored"}
    saved = message.event_type == "save"
    _upsert(db.session, card_id, {"google_state": "saved" if saved else "deleted", "google_state_at": now},
            {"google_saves" if saved else "google_deletes": 1})
    return {"status": "accepted"}


# --- reading ------------------------------------------------------------------------------------------------------

def _iso(moment: dt.datetime | None) -> dt.datetime | None:
    return moment


def jsonable(value):
    """``card_health``'s dict with its moments as ISO 8601 strings (the API's answer)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value.isoformat() if isinstance(value, dt.datetime) else value


def card_health(card: LoyaltyCard) -> dict:
    """One card's pass health (two indexed queries); moments are datetimes (``jsonable`` for the API)."""
    devices = db.session.scalar(select(func.count()).select_from(AppleDeviceRegistration)
                                .where(AppleDeviceRegistration.serial_number == card.apple_serial)) or 0
    row = db.session.get(PassHealth, card.id)
    first = row.apple_first_registered_at if row else None
    return {
        "apple": {
            "devices": devices,
            "first_registered_at": _iso(first),
            "updates_off": bool(first is not None and devices == 0),
            "unregistrations": row.apple_unregistrations if row else 0,
            "last_fetched_at": _iso(row.apple_last_fetched_at if row else None),
            "last_push_at": _iso(row.apple_last_push_at if row else None),
            "last_push_result": row.apple_last_push_result if row else None,
            "tokens_pruned": row.apple_tokens_pruned if row else 0,
        },
        "google": {
            "object_created": card.google_object_id is not None,
            "state": row.google_state if row else None,
            "state_at": _iso(row.google_state_at if row else None),
            "saves": row.google_saves if row else 0,
            "deletes": row.google_deletes if row else 0,
        },
    }


def summary(actor: Actor, program_id: int | None = None) -> dict:
    """The dashboard's figures for the actor's vendor (or one program): holders with the pass in a wallet per
    platform, and those who turned updates off (Apple: every registration gone; Google: deleted)."""
    cards = [LoyaltyCard.erased_at.is_(None)]
    if program_id is not None:
        cards.append(LoyaltyCard.program_id == program_id)
    if actor.vendor_id is not None:
        cards.append(LoyaltyCard.program_id.in_(select(LoyaltyProgram.id)
                                                .where(LoyaltyProgram.vendor_id == actor.vendor_id)))
    registered = exists().where(AppleDeviceRegistration.serial_number == LoyaltyCard.apple_serial)
    apple_holders = db.session.scalar(select(func.count()).select_from(LoyaltyCard).where(*cards, registered)) or 0
    apple_devices = db.session.scalar(
        select(func.count(distinct(AppleDeviceRegistration.id)))
        .select_from(AppleDeviceRegistration)
        .join(LoyaltyCard, LoyaltyCard.apple_serial == AppleDeviceRegistration.serial_number)
        .where(*cards)) or 0
    row = db.session.execute(
        select(func.count().filter(and_(PassHealth.apple_first_registered_at.is_not(None), ~registered)),
               func.count().filter(PassHealth.google_state == "saved"),
               func.count().filter(PassHealth.google_state == "deleted"),
               func.coalesce(func.sum(PassHealth.apple_tokens_pruned), 0),
               func.count().filter(and_(PassHealth.apple_last_push_result.is_not(None),
                                        PassHealth.apple_last_push_result != "ok")))
        .select_from(LoyaltyCard).join(PassHealth, PassHealth.card_id == LoyaltyCard.id).where(*cards)).one()
    return {
        "apple": {"holders": apple_holders, "devices": apple_devices, "updates_off": row[0],
                  "tokens_pruned": int(row[3]), "push_failing": row[4]},
        "google": {"holders": row[1], "deleted": row[2]},
    }

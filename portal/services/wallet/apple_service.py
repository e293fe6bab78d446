"""The database side of Apple's PassKit web service: device registrations and "which passes changed".

Apple documents the protocol in "Wallet Passes: Adding a Web Service to Update Passes" (PassKit Web Service
Reference). Wallet calls, relative to the pass's ``webServiceURL``:

* ``POST   /v1/devices/<device>/registrations/<passTypeId>/<serial>``  {"pushToken"} — 201 new, 200 known;
* ``GET    /v1/devices/<device>/registrations/<passTypeId>?passesUpdatedSince=<tag>`` — 200 serials or 204;
* ``DELETE /v1/devices/<device>/registrations/<passTypeId>/<serial>`` — 200;
* ``GET    /v1/passes/<passTypeId>/<serial>`` — the latest pass, with Last-Modified / 304;
* ``POST   /v1/log`` — error messages from devices.

The calls about one pass carry ``Authorization: ApplePass <authenticationToken>``.
"""
from __future__ import annotations

import datetime as dt
import hmac
import re
import unicodedata

from sqlalchemy import delete, null, or_, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import AppleDeviceRegistration, LoyaltyCard, LoyaltyProgram, RetiredCard
from .. import clock
from . import health, passes
from .settings import setting

DEVICE_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
SERIAL_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PUSH_TOKEN_RE = re.compile(r"^[0-9A-Fa-f]{8,200}$")
#: compared against when no card matches, so a wrong serial costs the same time as a wrong token
_DUMMY_TOKEN = "x" * 32


def authorized_pass(serial: str, authorization: str | None) -> tuple[LoyaltyCard, RetiredCard | None] | None:
    """``(card, retired)`` for the pass with ``serial`` if ``authorization`` is ``ApplePass <its token>``; else
    None. ``retired`` is set when the serial is an old identity of the card (replaced or merged); such a pass,
    like an erased card's, is served voided.

    Constant-time comparison of the token, whether the serial exists or not.
    """
    token = ""
    if authorization and authorization.startswith("ApplePass "):
        token = authorization[len("ApplePass "):].strip()
    card = retired = None
    if SERIAL_RE.match(serial or ""):
        card = passes.card_for_pass(serial=serial, erased_too=True)
        if card is None:
            retired = passes.retired_for_pass(serial)
            card = retired.card if retired is not None else None
    expected = (retired or card).apple_auth_token if card is not None else _DUMMY_TOKEN
    ok = hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))
    return (card, retired) if ok and card is not None and token else None


def fetch_pass(serial: str, authorization: str | None) -> tuple[LoyaltyCard, RetiredCard | None] | None:
    """A device's GET of the latest pass: ``authorized_pass``, and the card's pass health notes the fetch (a
    retired identity's voided pass is not the card's)."""
    found = authorized_pass(serial, authorization)
    if found is not None and found[1] is None:
        health.apple_fetched(found[0])
    return found


def register(device: str, pass_type_id: str, serial: str, push_token: str) -> bool:
    """Register (or refresh the push token of) a device for a pass. Returns True when new."""
    existing = db.session.scalar(select(AppleDeviceRegistration).where(
        AppleDeviceRegistration.device_library_id == device, AppleDeviceRegistration.pass_type_id == pass_type_id,
        AppleDeviceRegistration.serial_number == serial).with_for_update())
    if existing is not None:
        existing.push_token = push_token
        db.session.flush()
        return False
    try:
        with db.session.begin_nested():  # a concurrent registration of the same device and pass wins: 200
            db.session.add(AppleDeviceRegistration(device_library_id=device, pass_type_id=pass_type_id,
                                                   serial_number=serial, push_token=push_token,
                                                   created_at=clock.now()))
    except IntegrityError:
        return register(device, pass_type_id, serial, push_token)
    health.apple_registered(serial)
    return True


def unregister(device: str, pass_type_id: str, serial: str) -> None:
    gone = db.session.execute(delete(AppleDeviceRegistration).where(
        AppleDeviceRegistration.device_library_id == device, AppleDeviceRegistration.pass_type_id == pass_type_id,
        AppleDeviceRegistration.serial_number == serial))
    if gone.rowcount:
        health.apple_unregistered(serial)


def updated_serials(device: str, pass_type_id: str, since_tag: str | None) -> tuple[list[str], str | None]:
    """The serials registered on ``device`` whose pass changed after ``since_tag``, and the new tag.

    One indexed join: registrations by (device, pass type) — the unique index's prefix — then the card by its
    unique ``apple_serial`` and the program by primary key; so it costs the same with 200 000 registrations as
    with ten. A second one finds the device's passes of retired card identities (``retired_cards``, unique
    ``apple_serial``), which changed once, when retired.

    The tag is the latest change (card balance or program design) with microsecond precision. A change is
    stamped with the time its transaction *started* and becomes visible when it commits, so a tag taken "now"
    could jump over a change committing a moment later. The tag returned is therefore never later than
    ``now - WALLET_UPDATE_TAG_MARGIN_SECONDS``: the device may be told about a pass twice (it then gets a 304),
    but never misses one.
    """
    since = passes.parse_update_tag(since_tag)
    registered = (AppleDeviceRegistration.device_library_id == device,
                  AppleDeviceRegistration.pass_type_id == pass_type_id)
    stmt = (select(LoyaltyCard.apple_serial, LoyaltyCard.updated_at, LoyaltyProgram.updated_at)
            .select_from(AppleDeviceRegistration)
            .join(LoyaltyCard, LoyaltyCard.apple_serial == AppleDeviceRegistration.serial_number)
            .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
            .where(*registered))  # erased cards too: their devices fetch the voided pass
    # Old identities of replaced or merged cards: changed once, when retired (their pass is voided).
    retired = (select(RetiredCard.apple_serial, RetiredCard.retired_at, null())
               .select_from(AppleDeviceRegistration)
               .join(RetiredCard, RetiredCard.apple_serial == AppleDeviceRegistration.serial_number)
               .where(*registered))
    if since is not None:
        stmt = stmt.where(or_(LoyaltyCard.updated_at > since, LoyaltyProgram.updated_at > since))
        retired = retired.where(RetiredCard.retired_at > since)
    rows = db.session.execute(stmt).all() + db.session.execute(retired).all()
    if not rows:
        return [], None
    latest = max(max(card_at, program_at or card_at) for _serial, card_at, program_at in rows)
    ceiling = clock.now() - dt.timedelta(seconds=float(setting("WALLET_UPDATE_TAG_MARGIN_SECONDS")))
    tag_moment = min(latest, ceiling)
    if since is not None and tag_moment < since:
        tag_moment = since
    return sorted(r[0] for r in rows), passes.update_tag(tag_moment)


#: ``POST /log`` is unauthenticated: at most this many messages of at most this many characters are logged per call.
MAX_LOG_MESSAGES = 20
MAX_LOG_CHARS = 500


def _visible(ch: str) -> str:
    """A control or format character (C0/C1 incl. CR, LF and ESC, bidi overrides, line separators) as an escape."""
    if unicodedata.category(ch)[0] in "CZ" and ch != " ":
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
    return ch


def device_log_lines(body) -> list[str]:
    """What a device posted to ``/log`` (``{"logs": [...]}``), made safe to write to a log: control characters
    escaped (no CR to forge a line, no ANSI escape to paint a terminal), each message capped, their number capped."""
    logs = body.get("logs") if isinstance(body, dict) else None
    if not isinstance(logs, list):
        return []
    lines = []
    for message in logs[:MAX_LOG_MESSAGES]:
        text = str(message)[:MAX_LOG_CHARS]
        lines.append("".join(_visible(ch) for ch in text)[:MAX_LOG_CHARS])
    return lines

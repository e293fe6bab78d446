"""Apple Wallet passes of loyalty cards: pass.json, localised strings, images, and the signed .pkpass.

Per request the work is: build pass.json (a dict), one SHA-1, one signature and an in-memory zip. Everything else
is cached per application: the PassSigner (settings.pass_signer) and, per program design, a ``StaticFiles`` set
with the images and the four ``pass.strings`` (keyed by the program's id and ``updated_at``, so an edit of the
colours, logo or texts builds a new set).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
from collections import OrderedDict
from email.utils import format_datetime, parsedate_to_datetime

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from ...models import LoyaltyCard, LoyaltyProgram, RetiredCard
from .. import clock, messages
from ..cards import format_card_number
from ..i18n import SUPPORTED
from . import images
from .apple_pass import StaticFiles, build_pkpass, encode_pass_strings
from .settings import apple_configured, cache, pass_signer

PKPASS_MIMETYPE = "application/vnd.apple.pkpass"
#: Wallet's folders for our four languages (Luxembourgish is "lb" for Apple too).
LPROJ = {"en": "en", "fr": "fr", "de": "de", "lb": "lb"}
_STATIC_CACHE_SIZE = 256


def web_service_url(app=None) -> str:
    app = app or current_app
    return f"{app.config['PUBLIC_BASE_URL']}/api/v1/loyalty/apple"


def pass_strings(program: LoyaltyProgram) -> dict[str, str]:
    """The labels of the pass in the current locale (keys used in pass.json)."""
    unit = _("Stamps") if program.is_stamps else _("Points")
    return {
        "label_balance": unit,
        "change_balance": _("%@ stamps") if program.is_stamps else _("%@ points"),
        "label_goal": _("Reward at"),
        "label_reward": _("Reward"),
        "label_rewards": _("Rewards"),
        "label_member": _("Member"),
        "label_card_number": _("Card number"),
        "label_card_page": _("Your card online"),
        "label_shop": _("Shop"),
        "text_show_code": _("Show this code at the till to collect stamps.") if program.is_stamps
        else _("Show this code at the till to collect points."),
        "label_help": _("How it works"),
        "label_status": _("Status"),
        "text_voided": _("This card no longer works: it was replaced or deleted."),
    }


def _strings_files(program: LoyaltyProgram) -> dict[str, bytes]:
    files = {}
    for locale in SUPPORTED:
        with force_locale(locale):
            files[f"{LPROJ[locale]}.lproj/pass.strings"] = encode_pass_strings(pass_strings(program))
    return files


def _image_files(program: LoyaltyProgram) -> dict[str, bytes]:
    files = dict(images.default_icons(program.background_color, program.foreground_color))
    logos = images.pass_logos(program.logo_png) if program.logo_png else None
    files.update(logos or images.default_logos(program.foreground_color))
    return files


class _StaticCache:
    """An LRU of StaticFiles per program design; thread-safe."""

    def __init__(self, size: int = _STATIC_CACHE_SIZE):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, program: LoyaltyProgram) -> StaticFiles:
        logo_digest = hashlib.sha1(bytes(program.logo_png), usedforsecurity=False).hexdigest() \
            if program.logo_png else ""
        key = (program.id, program.updated_at.isoformat() if program.updated_at else "", program.background_color,
               program.foreground_color, logo_digest)
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
                return found
        files = StaticFiles({**_image_files(program), **_strings_files(program)})
        with self.lock:
            self.items[key] = files
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return files


def static_files(program: LoyaltyProgram) -> StaticFiles:
    state = cache()
    store = state.get("static_files")
    if store is None:
        with state["lock"]:
            store = state.setdefault("static_files", _StaticCache())
    return store.get(program)


def last_modified(card: LoyaltyCard, retired: RetiredCard | None = None) -> dt.datetime:
    """When the pass content last changed: the card's balance or the program's design (a retired identity's
    pass: when it was retired)."""
    if retired is not None:
        return retired.retired_at
    moments = [card.updated_at]
    if card.program.updated_at is not None:
        moments.append(card.program.updated_at)
    return max(moments)


def update_tag(moment: dt.datetime) -> str:
    """An opaque, sortable tag with microsecond precision (integer microseconds since the epoch)."""
    delta = moment.astimezone(clock.UTC) - dt.datetime(1970, 1, 1, tzinfo=clock.UTC)
    return str(delta // dt.timedelta(microseconds=1))


def parse_update_tag(tag: str | None) -> dt.datetime | None:
    if not tag or not tag.isascii() or not tag.isdigit() or len(tag) > 20:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=clock.UTC) + dt.timedelta(microseconds=int(tag))


def http_last_modified(card: LoyaltyCard, retired: RetiredCard | None = None) -> dt.datetime:
    """The Last-Modified to announce (whole seconds, as HTTP dates are).

    The next change must compare as newer than what a device stores, or a 304 would hide it. So we announce the
    second *after* the change (``ceil``) once that second is over; a pass served within the very second of its
    last change announces the second before (``floor``), which costs at most one extra download but never a
    missed update.
    """
    moment = last_modified(card, retired)
    ceiling = dt.datetime.fromtimestamp(math.ceil(moment.timestamp()), clock.UTC)
    if clock.now() >= ceiling:
        return ceiling
    return moment.replace(microsecond=0)


def not_modified_since(card: LoyaltyCard, header: str | None, retired: RetiredCard | None = None) -> bool:
    """True when ``If-Modified-Since`` shows the device has the current pass."""
    if not header:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    if since is None:
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=clock.UTC)
    return last_modified(card, retired) <= since


def format_http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(clock.UTC), usegmt=True)


def _field(key: str, label: str, value, **extra) -> dict:
    return {"key": key, "label": label, "value": value, **extra}


def pass_json(card: LoyaltyCard) -> dict:
    app = current_app
    program: LoyaltyProgram = card.program
    number = card.card_number
    barcode = {"format": "PKBarcodeFormatQR", "message": number, "messageEncoding": "iso-8859-1",
               "altText": format_card_number(number)}
    balance = card.stamps if program.is_stamps else card.points
    store_card: dict = {
        "headerFields": [_field("balance", "label_balance", balance, changeMessage="change_balance",
                                textAlignment="PKTextAlignmentRight")],
        "primaryFields": [],
        "secondaryFields": [],
        "auxiliaryFields": [_field("number", "label_card_number", format_card_number(number))],
        "backFields": [
            _field("card_page", "label_card_page", f"{app.config['PUBLIC_BASE_URL']}/c/{card.public_token}"),
            _field("help", "label_help", "text_show_code"),
            _field("shop", "label_shop", program.vendor.name),
        ],
    }
    if program.is_stamps:
        required = program.stamps_required or 0
        store_card["primaryFields"].append(
            _field("progress", "label_balance", f"{min(card.stamps, required) if required else card.stamps}"
                   f"{' / ' + str(required) if required else ''}"))
        if program.reward_text:
            store_card["secondaryFields"].append(_field("reward", "label_reward", program.reward_text))
    else:
        store_card["primaryFields"].append(_field("points", "label_balance", card.points))
        rewards = [r for r in program.rewards if r.active]
        if rewards:
            store_card["backFields"].insert(0, _field(
                "rewards", "label_rewards", "\n".join(f"{r.points_cost} · {r.name}" for r in rewards)))
    if card.customer_name:
        store_card["secondaryFields"].append(_field("member", "label_member", card.customer_name,
                                                    textAlignment="PKTextAlignmentRight"))
    message = messages.pass_back_field(card)  # the latest message to the holder (issue 16), first on the back
    if message is not None:
        store_card["backFields"].insert(0, message)
    from .. import relevance

    return {
        **_pass_header(app, program, card),
        "barcodes": [barcode],  # no singular "barcode": deprecated since iOS 9, rejected by pass validators
        "storeCard": store_card,
        # locations / relevantDates only when the shop set them (services/relevance.py)
        **relevance.pass_fields(program, relevance.locations_of(program.id)),
    }


def _pass_header(app, program: LoyaltyProgram, identity) -> dict:
    """What every pass of the program carries: who issued it, its serial and token (``identity``: the card, or
    one of its retired identities), where the web service is, the program's name and colours."""
    return {
        "formatVersion": 1,
        "passTypeIdentifier": app.config["APPLE_PASS_TYPE_ID"],
        "teamIdentifier": app.config["APPLE_TEAM_ID"],
        "serialNumber": identity.apple_serial,
        "authenticationToken": identity.apple_auth_token,
        "webServiceURL": web_service_url(app),
        "organizationName": program.vendor.name,
        "description": program.name,
        "logoText": program.name,
        "foregroundColor": images.css_rgb(program.foreground_color, (255, 255, 255)),
        "backgroundColor": images.css_rgb(program.background_color),
        "labelColor": images.css_rgb(program.label_color, (207, 227, 245)),
        "sharingProhibited": True,
    }


def voided_pass_json(card: LoyaltyCard, retired: RetiredCard | None = None) -> dict:
    """The pass that replaces an old one on the phones that hold it: ``voided``, and nothing of the card left —
    no balance, name, card link or barcode. ``retired``: an old identity of the card (replaced or merged);
    else the card itself was erased."""
    app = current_app
    program: LoyaltyProgram = card.program
    identity = retired if retired is not None else card
    return {
        **_pass_header(app, program, identity),
        "voided": True,
        "storeCard": {
            "primaryFields": [_field("status", "label_status", "text_voided")],
            "auxiliaryFields": [_field("number", "label_card_number", format_card_number(identity.card_number))],
            "backFields": [_field("shop", "label_shop", program.vendor.name)],
        },
    }


def card_for_pass(*, token: str | None = None, serial: str | None = None,
                  erased_too: bool = False) -> LoyaltyCard | None:
    """The card (with program and vendor, one query) for a pass request; rewards load only for points programs.

    Same rules as ``cards.get_card_by_token``: erased cards and suspended shops have no pass (``erased_too``: the
    web service gives an erased card's devices its voided pass).
    """
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from ...extensions import db

    if token is not None:
        if not token or len(token) > 64:
            return None
        where = LoyaltyCard.public_token == token
    else:
        if not serial or len(serial) > 64:
            return None
        where = LoyaltyCard.apple_serial == serial
    card = db.session.scalar(select(LoyaltyCard).where(where).options(
        joinedload(LoyaltyCard.program).joinedload(LoyaltyProgram.vendor),
        joinedload(LoyaltyCard.program).selectinload(LoyaltyProgram.rewards)))
    if card is None or (card.erased_at is not None and not erased_too) or not card.program.vendor.active:
        return None
    return card


def retired_for_pass(serial: str) -> RetiredCard | None:
    """The retired identity with this Apple serial, with its card, program and vendor (one query)."""
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from ...extensions import db

    if not serial or len(serial) > 64:
        return None
    retired = db.session.scalar(select(RetiredCard).where(RetiredCard.apple_serial == serial).options(
        joinedload(RetiredCard.card).joinedload(LoyaltyCard.program).joinedload(LoyaltyProgram.vendor),
        joinedload(RetiredCard.card).joinedload(LoyaltyCard.program).selectinload(LoyaltyProgram.rewards)))
    if retired is None or not retired.card.program.vendor.active:
        return None
    return retired


def available() -> bool:
    return apple_configured() and pass_signer() is not None


def build(card: LoyaltyCard, retired: RetiredCard | None = None) -> bytes:
    """The signed .pkpass of a card — voided for an erased card or a retired identity of it (raises
    RuntimeError when Apple Wallet is not configured)."""
    signer = pass_signer()
    if signer is None:
        raise RuntimeError("Apple Wallet is not configured")
    from .certificates import ensure_valid

    ensure_valid()  # an expired certificate: 503 pass_certificate_expired, never a pass Wallet would refuse
    voided = retired is not None or card.erased_at is not None
    body = voided_pass_json(card, retired) if voided else pass_json(card)
    return build_pkpass(body, static_files(card.program), signer)

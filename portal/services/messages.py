"""Messages to pass holders and automatic nudges (issue 16).

An owner writes a short message (one text per language, or one text for all), picks who gets it — every card of a
program, cards one or two stamps from the reward, cards not seen for N days, or one customer — and sends it now or
at a date and time in the shop's time zone. Sending writes, in the request's transaction:

1. one ``pass_message_deliveries`` row per card of the segment (one ``INSERT … SELECT``: 10 000 cards queue in
   one statement);
2. the cards' ``updated_at``, which is the pass's Last-Modified and what Wallet's "which passes changed" compares
   (an iPhone must fetch the pass that now carries the message);
3. one wallet outbox row per card that has none waiting (coalesced: a card with a balance update waiting gets the
   message with it).

The wallet worker then pushes the card's Apple devices (the pass carries the latest message as a back field whose
``changeMessage`` is ``%@``, so the text shows on the lock screen) and calls Google's ``addMessage``: with
``TEXT_AND_NOTIFY`` while the pass had fewer than 3 notifying messages in the last 24 hours, else ``TEXT`` (the
message is added silently instead of being refused with a quota error). It records which on the delivery.

Nudges are message rows of kind ``nudge_*``, switched on per program (``loyalty_programs.nudges``): "one stamp to
go" and "your reward is waiting" are written after a stamp in the ledger's transaction (the stamp's own outbox row
carries them), "we miss you" by the periodic check (``tick``) that also releases scheduled messages. Each card gets
at most ``daily_cap`` nudges a day (the shop's day) and none once its holder turned messages off.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import (AppleDeviceRegistration, LoyaltyCard, LoyaltyProgram, LoyaltyTransaction, PassMessage,
                      PassMessageDelivery, PassMessageOptOut, WalletOutbox)
from ..storage.types import UTCDateTime
from . import clock
from .actor import Actor
from .errors import Conflict, NotFound, ValidationError
from .i18n import SUPPORTED, normalise_locale
from .programs import active_rewards, get_program
from .validation import Fields

log = logging.getLogger("portal.messages")

MAX_TEXT = 300
#: Google: at most 3 messages that notify, per pass, in any 24 hours.
GOOGLE_NOTIFY_LIMIT = 3
GOOGLE_NOTIFY_WINDOW = dt.timedelta(hours=24)
SEGMENTS = ("all", "near_reward", "inactive", "card")
NUDGE_KINDS = ("one_to_go", "reward_ready", "miss_you")
MAX_DAILY_CAP = 5
#: "We miss you" runs at most this often per worker process (it is idempotent: a card gets it once per absence).
MISS_YOU_EVERY = dt.timedelta(minutes=5)


# --- texts -------------------------------------------------------------------------------------------------------

def _parse_texts(f: Fields, prefix: str = "text_") -> tuple[dict, str]:
    """{"en": …, "fr": …} from ``texts`` (a JSON object) or the form fields ``text_en`` …; at least one. The first
    language given is the fallback for cards in a language without a text."""
    given = f.raw("texts")
    texts: dict[str, str] = {}
    if given is not None:
        if not isinstance(given, dict):
            f.error("texts", _l("Must be an object of texts per language (en, fr, de, lb)."))
            return {}, "en"
        for key, value in given.items():
            lang = normalise_locale(str(key)) if isinstance(key, str) else None
            if lang is None:
                f.error("texts", _l("Must be one of: %(choices)s.", choices=", ".join(SUPPORTED)))
                continue
            sub = Fields({lang: value})
            text = sub.string(lang, max_length=MAX_TEXT, default="")
            for message in sub.errors.get(lang, []):
                f.error(f"texts.{lang}", message)
            if text:
                texts[lang] = text
    else:
        for lang in SUPPORTED:
            text = f.string(f"{prefix}{lang}", max_length=MAX_TEXT, default="")
            if text:
                texts[lang] = text
    if not texts and not any(k.startswith("texts") or k.startswith(prefix) for k in f.errors):
        f.error("texts", _l("Write the message in at least one language."))
    fallback = next((lang for lang in SUPPORTED if lang in texts), "en")
    return texts, fallback


def text_for(texts: dict, fallback: str, locale: str | None) -> str:
    """The card's language, else the fallback language, else any text given."""
    if locale in texts:
        return texts[locale]
    if fallback in texts:
        return texts[fallback]
    return next(iter(texts.values()), "")


# --- segments ----------------------------------------------------------------------------------------------------

def _not_opted_out():
    return ~exists().where(PassMessageOptOut.card_id == LoyaltyCard.id)


def _seen_since(cutoff: dt.datetime):
    return exists().where(LoyaltyTransaction.card_id == LoyaltyCard.id, LoyaltyTransaction.created_at >= cutoff)


def _segment_where(program: LoyaltyProgram, segment: str, days: int | None, card_id: int | None,
                   now: dt.datetime) -> list:
    where = [LoyaltyCard.program_id == program.id, LoyaltyCard.erased_at.is_(None), _not_opted_out()]
    if segment == "near_reward":
        required = program.stamps_required or 0
        where.append(LoyaltyCard.stamps.between(required - 2, required - 1) if program.is_stamps and required
                     else literal(False))
    elif segment == "inactive":
        cutoff = now - dt.timedelta(days=days or 0)
        where += [LoyaltyCard.created_at < cutoff, ~_seen_since(cutoff)]
    elif segment == "card":
        where.append(LoyaltyCard.id == card_id)
    return where


def _segment_ids(message: PassMessage, program: LoyaltyProgram, now: dt.datetime):
    return select(LoyaltyCard.id).where(*_segment_where(program, message.segment, message.segment_days,
                                                        message.segment_card_id, now))


# --- compose, preview, send --------------------------------------------------------------------------------------

def _parse_schedule(f: Fields, tz_name: str, now: dt.datetime) -> dt.datetime | None:
    """``scheduled_at``: "2026-12-24T09:30" in the shop's time zone (what a datetime-local input sends), or an ISO
    moment with its offset. Must be in the future (within a year)."""
    raw = f.string("scheduled_at", max_length=40, default=None)
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        f.error("scheduled_at", _l("Give a date and time like 2026-12-24T09:30."))
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.zone(tz_name))
    moment = moment.astimezone(clock.UTC)
    if moment <= now:
        f.error("scheduled_at", _l("Choose a moment in the future."))
        return None
    if moment > now + dt.timedelta(days=366):
        f.error("scheduled_at", _l("Choose a moment within the next year."))
        return None
    return moment


def _parse_message(actor: Actor, data: dict) -> dict:
    from .cards import get_card

    f = Fields(data)
    program_id = f.integer("program_id", minimum=1)
    segment = f.choice("segment", SEGMENTS, required=True)
    days = f.integer("days", minimum=1, maximum=365, required=segment == "inactive") if segment == "inactive" \
        else None
    texts, fallback = _parse_texts(f)
    card = None
    if segment == "card":
        number = f.string("card_number", required=True, max_length=40, default=None)
        if number:
            try:
                card = get_card(actor, number)
            except (NotFound, ValidationError) as error:
                f.error("card_number", error.render_message())
            else:
                if card.erased_at is not None:
                    f.error("card_number", _l("No card with this number."))
                    card = None
                elif program_id is None:
                    program_id = card.program_id
                elif card.program_id != program_id:
                    f.error("card_number", _l("This card belongs to another program."))
    if program_id is None and "program_id" not in f.errors and segment != "card":
        f.error("program_id", _l("This field is required."))
    program = None
    if program_id is not None and not f.errors.get("program_id"):
        program = get_program(actor, program_id)  # another vendor's program: 404
    now = clock.now()
    scheduled_at = _parse_schedule(f, program.vendor.timezone if program is not None else "UTC", now)
    f.done()
    return {"program": program, "segment": segment, "days": days, "card": card, "texts": texts,
            "fallback": fallback, "scheduled_at": scheduled_at}


def _message_row(actor: Actor, parsed: dict) -> PassMessage:
    return PassMessage(program_id=parsed["program"].id, kind="message", texts=parsed["texts"],
                       fallback_locale=parsed["fallback"], segment=parsed["segment"], segment_days=parsed["days"],
                       segment_card_id=parsed["card"].id if parsed["card"] is not None else None, status="draft",
                       scheduled_at=parsed["scheduled_at"], recipients=0, created_by=actor.name or "",
                       created_at=clock.now())


def preview(actor: Actor, data: dict) -> dict:
    """How many cards the message would reach, and how: ``notify`` (a notification on the lock screen: an Apple
    pass, or a Google pass under its 3 notifications a day), ``silent`` (only a Google pass that had its 3 today: the
    message is added without a notification), ``none`` (no pass in a wallet: the card page shows it). Nothing is
    written."""
    parsed = _parse_message(actor, data)
    message = _message_row(actor, parsed)
    counts = audience(message, parsed["program"])
    counts["scheduled_at"] = parsed["scheduled_at"]
    return counts


def audience(message: PassMessage, program: LoyaltyProgram, now: dt.datetime | None = None) -> dict:
    from flask import current_app

    now = now or clock.now()
    ids = _segment_ids(message, program, now).subquery()
    pass_type = current_app.config.get("APPLE_PASS_TYPE_ID") or ""
    has_apple = exists().where(AppleDeviceRegistration.serial_number == LoyaltyCard.apple_serial,
                               AppleDeviceRegistration.pass_type_id == pass_type)
    rows = db.session.execute(select(LoyaltyCard.id, has_apple, LoyaltyCard.google_object_id.is_not(None))
                              .where(LoyaltyCard.id.in_(select(ids.c.id)))).all()
    used = _quota_used([r[0] for r in rows if r[2]], now, pending_too=True)
    notify = silent = none = apple = google_notify = google_silent = 0
    for card_id, on_apple, on_google in rows:
        google_notifies = on_google and used.get(card_id, 0) < GOOGLE_NOTIFY_LIMIT
        apple += bool(on_apple)
        google_notify += bool(google_notifies)
        google_silent += bool(on_google and not google_notifies)
        if on_apple or google_notifies:
            notify += 1
        elif on_google:
            silent += 1
        else:
            none += 1
    opted_out = db.session.scalar(select(func.count()).select_from(PassMessageOptOut).join(
        LoyaltyCard, LoyaltyCard.id == PassMessageOptOut.card_id).where(LoyaltyCard.program_id == program.id)) or 0
    return {"recipients": len(rows), "notify": notify, "silent": silent, "none": none, "apple": apple,
            "google_notify": google_notify, "google_silent": google_silent, "opted_out": opted_out}


def _quota_used(card_ids: list[int], now: dt.datetime, *, pending_too: bool, session=None) -> dict[int, int]:
    """Per card: Google notifications of the last 24 h (and, for a preview, deliveries still waiting, which the
    worker sends first and which may use the quota)."""
    if not card_ids:
        return {}
    session = session or db.session
    counted = and_(PassMessageDelivery.google_mode == "notify",
                   PassMessageDelivery.sent_at > now - GOOGLE_NOTIFY_WINDOW)
    if pending_too:
        counted = or_(counted, PassMessageDelivery.status == "pending")
    used: dict[int, int] = {}
    for start in range(0, len(card_ids), 5000):
        chunk = card_ids[start:start + 5000]
        for card_id, n in session.execute(select(PassMessageDelivery.card_id, func.count())
                                          .where(PassMessageDelivery.card_id.in_(chunk), counted)
                                          .group_by(PassMessageDelivery.card_id)):
            used[card_id] = n
    return used


def create(actor: Actor, data: dict, *, send: bool = False) -> PassMessage:
    """A new message (a draft); with ``send`` it goes out now, or is scheduled when it has ``scheduled_at``."""
    parsed = _parse_message(actor, data)
    message = _message_row(actor, parsed)
    db.session.add(message)
    db.session.flush()
    if send:
        _send(message, parsed["program"])
    return message


def send(actor: Actor, message_id: int) -> PassMessage:
    """Send a draft now, or schedule it when it has a moment in the future."""
    message = get_message(actor, message_id)
    if message.status != "draft":
        raise Conflict(_l("This message was already sent or scheduled."))
    if message.scheduled_at is not None and message.scheduled_at <= clock.now():
        message.scheduled_at = None  # its moment passed while it was a draft: now
    _send(message, message.program)
    return message


def _send(message: PassMessage, program: LoyaltyProgram) -> None:
    from .programs import ensure_active

    ensure_active(program)
    if message.scheduled_at is not None:
        message.status = "scheduled"
        db.session.flush()
        return
    release(message.id, program)


def release(message_id: int, program: LoyaltyProgram, session=None) -> int:
    """Queue the message for its segment (once: a conditional UPDATE claims it, so two workers releasing the same
    scheduled message queue it once). Returns the number of cards."""
    session = session or db.session
    now = clock.now()
    claimed = session.execute(update(PassMessage).where(PassMessage.id == message_id,
                                                        PassMessage.status.in_(("draft", "scheduled")))
                              .values(status="sending", sent_at=now).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        return 0
    message = session.get(PassMessage, message_id)
    session.refresh(message)
    cards = _segment_ids(message, program, now)
    n = _queue(session, message.id, cards, now)
    session.execute(update(PassMessage).where(PassMessage.id == message.id).values(recipients=n)
                    .execution_options(synchronize_session=False))
    session.refresh(message)
    return n


def _queue(session, message_id: int, cards, now: dt.datetime) -> int:
    """Deliveries for ``cards`` (a select of card ids), the cards' pass marked changed, and the outbox rows."""
    stamp = literal(now, UTCDateTime())
    session.execute(insert(PassMessageDelivery).from_select(
        ["message_id", "card_id", "status", "apple_pushes", "created_at"],
        select(literal(message_id), cards.subquery().c.id, literal("pending"), literal(0), stamp)))
    mine = select(PassMessageDelivery.card_id).where(PassMessageDelivery.message_id == message_id,
                                                     PassMessageDelivery.created_at == stamp)
    # Counted, not the INSERT's rowcount: psycopg reports -1 for an INSERT … SELECT through SQLAlchemy here.
    n = session.scalar(select(func.count()).select_from(mine.subquery())) or 0
    if not n:
        return 0
    session.execute(update(LoyaltyCard).where(LoyaltyCard.id.in_(mine)).values(updated_at=now)
                    .execution_options(synchronize_session=False))
    waiting = exists().where(WalletOutbox.card_id == PassMessageDelivery.card_id, WalletOutbox.delivered_at.is_(None),
                             WalletOutbox.claimed_until.is_(None))
    session.execute(insert(WalletOutbox).from_select(
        ["card_id", "reason", "created_at", "available_at", "attempts"],
        select(PassMessageDelivery.card_id, literal("message"), stamp, stamp, literal(0))
        .where(PassMessageDelivery.message_id == message_id, PassMessageDelivery.created_at == stamp, ~waiting)))
    return n


def get_message(actor: Actor, message_id: int) -> PassMessage:
    stmt = select(PassMessage).join(LoyaltyProgram, LoyaltyProgram.id == PassMessage.program_id).where(
        PassMessage.id == message_id, PassMessage.kind == "message").options(
        joinedload(PassMessage.program).joinedload(LoyaltyProgram.vendor))
    if actor.vendor_id is not None:
        stmt = stmt.where(LoyaltyProgram.vendor_id == actor.vendor_id)
    elif not actor.is_admin:
        raise NotFound()
    message = db.session.scalar(stmt)
    if message is None:
        raise NotFound()
    return message


def progress(message: PassMessage) -> dict:
    """Deliveries done and waiting, and what Google did with the done ones."""
    rows = db.session.execute(select(PassMessageDelivery.status, PassMessageDelivery.google_mode, func.count())
                              .where(PassMessageDelivery.message_id == message.id)
                              .group_by(PassMessageDelivery.status, PassMessageDelivery.google_mode)).all()
    out = {"recipients": message.recipients, "sent": 0, "pending": 0, "google_notify": 0, "google_silent": 0}
    for status, mode, n in rows:
        out[status] += n
        if mode == "notify":
            out["google_notify"] += n
        elif mode == "silent":
            out["google_silent"] += n
    out["done"] = message.status == "sending" and out["pending"] == 0
    out["percent"] = 100 if not out["recipients"] else int(100 * out["sent"] / out["recipients"])
    return out


def list_messages(actor: Actor, limit: int = 50) -> list[PassMessage]:
    stmt = select(PassMessage).join(LoyaltyProgram, LoyaltyProgram.id == PassMessage.program_id).where(
        PassMessage.kind == "message").options(joinedload(PassMessage.program)).order_by(PassMessage.id.desc())
    if actor.vendor_id is not None:
        stmt = stmt.where(LoyaltyProgram.vendor_id == actor.vendor_id)
    elif not actor.is_admin:
        return []
    return list(db.session.scalars(stmt.limit(limit)))


def message_to_dict(message: PassMessage, with_progress: bool = True) -> dict:
    body = {"id": message.id, "program_id": message.program_id, "segment": message.segment,
            "days": message.segment_days, "texts": dict(message.texts), "status": message.status,
            "scheduled_at": message.scheduled_at.isoformat() if message.scheduled_at else None,
            "sent_at": message.sent_at.isoformat() if message.sent_at else None,
            "created_at": message.created_at.isoformat()}
    if with_progress:
        body["progress"] = progress(message)
    return body


# --- the holder's side: the latest message, opt-out --------------------------------------------------------------

def opted_out(card_id: int) -> bool:
    return db.session.get(PassMessageOptOut, card_id) is not None


def set_opt_out(card: LoyaltyCard, off: bool) -> None:
    """The holder turns messages off (or on again) from their card page."""
    row = db.session.get(PassMessageOptOut, card.id)
    if off and row is None:
        db.session.add(PassMessageOptOut(card_id=card.id, created_at=clock.now()))
    elif not off and row is not None:
        db.session.delete(row)
    db.session.flush()


def latest_text(card: LoyaltyCard) -> str | None:
    """The newest message for the card in its language (None when there is none or its holder turned them off)."""
    row = db.session.execute(select(PassMessage.texts, PassMessage.fallback_locale)
                             .join(PassMessageDelivery, PassMessageDelivery.message_id == PassMessage.id)
                             .where(PassMessageDelivery.card_id == card.id, ~exists().where(
                                 PassMessageOptOut.card_id == card.id))
                             .order_by(PassMessageDelivery.id.desc()).limit(1)).first()
    return text_for(row.texts, row.fallback_locale, card.locale) if row else None


def pass_back_field(card: LoyaltyCard) -> dict | None:
    """The Apple pass's message field: its ``changeMessage`` ``%@`` makes Wallet show the new text on the lock
    screen when the value changed (a message identical to the previous one changes nothing, so shows nothing)."""
    text = latest_text(card)
    if not text:
        return None
    return {"key": "message", "label": card.program.vendor.name, "value": text, "changeMessage": "%@"}


# --- nudges ------------------------------------------------------------------------------------------------------

def nudge_settings(actor: Actor, program_id: int) -> tuple[LoyaltyProgram, dict]:
    """The program's nudges: {kind: {"on", "daily_cap", "days", "texts"}}."""
    program = get_program(actor, program_id)
    stored = dict(program.nudges or {})
    ids = [v.get("message_id") for v in stored.values() if isinstance(v, dict) and v.get("message_id")]
    texts = {m.id: m.texts for m in db.session.scalars(select(PassMessage).where(PassMessage.id.in_(ids)))} \
        if ids else {}
    out = {}
    for kind in NUDGE_KINDS:
        item = stored.get(kind) or {}
        out[kind] = {"on": bool(item.get("on")), "daily_cap": int(item.get("daily_cap") or 1),
                     "days": int(item.get("days") or 30), "texts": dict(texts.get(item.get("message_id"), {}))}
    return program, out


def save_nudges(actor: Actor, program_id: int, data: dict) -> dict:
    """``data``: {kind: {"on", "daily_cap", "days" (miss_you), "texts"}} (the API) or the form's flat fields
    ``<kind>_on``, ``<kind>_daily_cap``, ``<kind>_days``, ``<kind>_text_<lang>``."""
    program, current = nudge_settings(actor, program_id)
    f = Fields(data)
    parsed = {}
    for kind in NUDGE_KINDS:
        nested = data.get(kind) if isinstance(data.get(kind), dict) else None
        sub = Fields(nested if nested is not None else {
            k[len(kind) + 1:]: v for k, v in data.items() if isinstance(k, str) and k.startswith(kind + "_")})
        on = sub.boolean("on")
        cap = sub.integer("daily_cap", minimum=1, maximum=MAX_DAILY_CAP, default=1)
        days = sub.integer("days", minimum=1, maximum=365, default=30) if kind == "miss_you" else None
        texts, fallback = _parse_texts(sub)
        if not on and "texts" in sub.errors and not texts:
            sub.errors.pop("texts")  # switched off: a text is not needed
        if kind in ("one_to_go", "reward_ready") and on and not program.is_stamps and kind == "one_to_go":
            sub.error("on", _l("“One stamp to go” is for stamp cards."))
        for name, messages in sub.errors.items():
            for message in messages:
                f.error(f"{kind}.{name}", message)
        parsed[kind] = {"on": on, "daily_cap": cap, "days": days, "texts": texts, "fallback": fallback}
    f.done()
    stored = dict(program.nudges or {})
    for kind, item in parsed.items():
        previous = stored.get(kind) or {}
        message_id = previous.get("message_id")
        if item["texts"]:
            message = db.session.get(PassMessage, message_id) if message_id else None
            if message is None or message.program_id != program.id:
                message = PassMessage(program_id=program.id, kind=f"nudge_{kind}", segment="nudge", status="nudge",
                                      texts=item["texts"], fallback_locale=item["fallback"], recipients=0,
                                      created_by=actor.name or "", created_at=clock.now())
                db.session.add(message)
                db.session.flush()
            else:
                message.texts, message.fallback_locale = item["texts"], item["fallback"]
            message_id = message.id
        stored[kind] = {"on": item["on"] and message_id is not None, "message_id": message_id,
                        "daily_cap": item["daily_cap"], **({"days": item["days"]} if item["days"] else {})}
    program.nudges = stored
    db.session.flush()
    return nudge_settings(actor, program_id)[1]


def _nudges_today(card_id: int, tz_name: str, now: dt.datetime) -> int:
    day_start, _ = clock.local_day_bounds(now, tz_name)
    return db.session.scalar(select(func.count()).select_from(PassMessageDelivery)
                             .join(PassMessage, PassMessage.id == PassMessageDelivery.message_id)
                             .where(PassMessageDelivery.card_id == card_id, PassMessage.kind != "message",
                                    PassMessageDelivery.created_at >= day_start)) or 0


def after_balance_change(card: LoyaltyCard, program: LoyaltyProgram, before: int) -> str | None:
    """Called in the ledger's transaction after stamps or points were added, only for a program with nudges: a
    "one stamp to go" or "your reward is waiting" delivery for the card when it just got there. The stamp's own
    outbox row carries it to the wallets. Returns the kind written, if any."""
    settings = program.nudges or {}
    kind = None
    if program.is_stamps and program.stamps_required:
        required, now_have = program.stamps_required, card.stamps
        if before < required <= now_have:
            kind = "reward_ready"
        elif now_have == required - 1 and before < now_have:
            kind = "one_to_go"
    else:
        cheapest = active_rewards(program)[:1]  # the stamp path loads no catalog: one query, nudges on only
        if cheapest and before < cheapest[0].points_cost <= card.points:
            kind = "reward_ready"
    item = settings.get(kind) if kind else None
    if not item or not item.get("on") or not item.get("message_id"):
        return None
    now = clock.now()
    if opted_out(card.id) or _nudges_today(card.id, program.vendor.timezone, now) >= int(item.get("daily_cap") or 1):
        return None
    db.session.add(PassMessageDelivery(message_id=item["message_id"], card_id=card.id, status="pending",
                                       apple_pushes=0, created_at=now))
    db.session.execute(update(LoyaltyCard).where(LoyaltyCard.id == card.id).values(updated_at=now)
                       .execution_options(synchronize_session=False))
    db.session.flush()
    return kind


def _miss_you(session, program: LoyaltyProgram, item: dict, now: dt.datetime) -> int:
    """Cards not seen for ``days`` that got no "we miss you" since: one delivery each (once per absence)."""
    cutoff = now - dt.timedelta(days=int(item.get("days") or 30))
    message_id = item["message_id"]
    got_it = exists().where(PassMessageDelivery.card_id == LoyaltyCard.id,
                            PassMessageDelivery.message_id == message_id, PassMessageDelivery.created_at >= cutoff)
    cards = select(LoyaltyCard.id).where(LoyaltyCard.program_id == program.id, LoyaltyCard.erased_at.is_(None),
                                         _not_opted_out(), LoyaltyCard.created_at < cutoff, ~_seen_since(cutoff),
                                         ~got_it)
    return _queue(session, message_id, cards, now)


def due_work(session, now: dt.datetime, *, miss_you: bool) -> bool:
    """Whether ``tick`` has anything to do: a scheduled message due, or (``miss_you``) a program with the nudge on."""
    if session.scalar(select(PassMessage.id).where(PassMessage.status == "scheduled",
                                                   PassMessage.scheduled_at <= now).limit(1)) is not None:
        return True
    return miss_you and session.scalar(select(LoyaltyProgram.id).where(LoyaltyProgram.nudges.is_not(None))
                                       .limit(1)) is not None


def tick(session, *, miss_you: bool = True) -> dict:
    """The periodic work (the wallet worker runs it; ``flask loyalty messages-tick`` too): release the scheduled
    messages that are due, and queue "we miss you" nudges. Safe to run from several workers at once."""
    now = clock.now()
    released = 0
    due = session.execute(select(PassMessage.id, PassMessage.program_id).where(
        PassMessage.status == "scheduled", PassMessage.scheduled_at <= now).order_by(PassMessage.scheduled_at)
        .limit(100)).all()
    for message_id, program_id in due:
        program = session.get(LoyaltyProgram, program_id, options=[joinedload(LoyaltyProgram.vendor)])
        if program is None or not program.active or not program.vendor.active:
            continue  # a paused program's message waits until it is resumed
        released += int(release(message_id, program, session) > 0)
    nudged = 0
    if miss_you:
        for program in session.scalars(select(LoyaltyProgram).where(LoyaltyProgram.nudges.is_not(None),
                                                                    LoyaltyProgram.active.is_(True))):
            item = (program.nudges or {}).get("miss_you") or {}
            if item.get("on") and item.get("message_id"):
                nudged += _miss_you(session, program, item, now)
    return {"released": released, "miss_you": nudged}


# --- the wallet worker's side ------------------------------------------------------------------------------------

def pending_for(session, card_ids: list[int]) -> dict[int, list[dict]]:
    """The deliveries waiting for these cards, oldest first, with their texts."""
    if not card_ids:
        return {}
    out: dict[int, list[dict]] = {}
    rows = session.execute(select(PassMessageDelivery.id, PassMessageDelivery.card_id, PassMessage.texts,
                                  PassMessage.fallback_locale)
                           .join(PassMessage, PassMessage.id == PassMessageDelivery.message_id)
                           .where(PassMessageDelivery.card_id.in_(card_ids), PassMessageDelivery.status == "pending")
                           .order_by(PassMessageDelivery.id)).all()
    for row in rows:
        out.setdefault(row.card_id, []).append({"id": row.id, "texts": row.texts, "fallback": row.fallback_locale})
    return out


def notifications_used(session, card_ids: list[int], now: dt.datetime) -> dict[int, int]:
    return _quota_used(card_ids, now, pending_too=False, session=session)


def google_message(delivery: dict, card: LoyaltyCard, notify: bool) -> dict:
    """The Google ``Message``: the card's language as the default, the other languages given as translations."""
    texts, fallback = delivery["texts"], delivery["fallback"]
    main = text_for(texts, fallback, card.locale)
    others = [{"language": lang, "value": texts[lang]} for lang in SUPPORTED
              if lang in texts and lang != card.locale]
    body = {"defaultValue": {"language": card.locale or "en", "value": main}}
    if others:
        body["translatedValues"] = others
    return {"id": f"loyalty-message-{delivery['id']}", "header": card.program.vendor.name, "body": main,
            "localizedBody": body, "messageType": "TEXT_AND_NOTIFY" if notify else "TEXT"}


def record_sent(session, done: list[tuple[int, str | None, int]]) -> None:
    """``done``: (delivery id, Google mode, Apple pushes). Only deliveries still pending change (one executemany)."""
    if not done:
        return
    table = PassMessageDelivery.__table__
    session.execute(update(table).where(table.c.id == bindparam("delivery_id"), table.c.status == "pending")
                    .values(status="sent", google_mode=bindparam("mode"), apple_pushes=bindparam("pushes"),
                            sent_at=clock.now()),
                    [{"delivery_id": i, "mode": mode, "pushes": pushes} for i, mode, pushes in done])

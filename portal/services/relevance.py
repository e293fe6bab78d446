"""Where and when a program's pass is relevant: up to 10 shop locations and a time-boxed offer.

Apple shows a pass on the lock screen near one of its ``locations`` (at most 10: Apple's documented limit, the
rest would be ignored) and around its ``relevantDates``; Google Wallet's class takes the same coordinates as
``merchantLocations`` (geofenced notifications). Nothing is added to a pass that the shop did not set.

Input (the JSON API's body, or the settings form turned into the same dict)::

    {"locations": [{"latitude": 49.61, "longitude": 6.13, "relevant_text": "Café du Coin is around the corner"}],
     "relevant_from": "2026-12-01T08:00:00+01:00", "relevant_until": "2026-12-24T18:00:00+01:00"}

A time without an offset is in the shop's timezone. ``locations`` replaces the list; leaving out ``relevant_from``
and ``relevant_until`` (or sending null) removes the offer dates.
"""
from __future__ import annotations

import datetime as dt
import math

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from ..extensions import db
from ..models import LoyaltyProgram, ProgramLocation
from . import clock, programs, wallet_outbox
from .actor import Actor
from .errors import ValidationError
from .validation import FORBIDDEN_CHARS_RE

#: Apple: "a maximum of 10 locations"; Google's merchantLocations: the same.
MAX_LOCATIONS = 10
MAX_RELEVANT_TEXT = 120
#: An offer longer than a year is not "time-boxed"; Apple keeps a pass's relevance short.
MAX_OFFER_DAYS = 366


def locations_of(program_id: int) -> list[ProgramLocation]:
    return list(db.session.scalars(select(ProgramLocation).where(ProgramLocation.program_id == program_id)
                                   .order_by(ProgramLocation.position)))


def to_dict(program: LoyaltyProgram, locations: list[ProgramLocation] | None = None) -> dict:
    if locations is None:
        locations = locations_of(program.id)
    return {
        "program_id": program.id,
        "locations": [{"latitude": loc.latitude, "longitude": loc.longitude, "relevant_text": loc.relevant_text}
                      for loc in locations],
        "relevant_from": program.relevant_from.isoformat() if program.relevant_from else None,
        "relevant_until": program.relevant_until.isoformat() if program.relevant_until else None,
        "max_locations": MAX_LOCATIONS,
    }


def get(actor: Actor, program_id: int) -> dict:
    return to_dict(programs.get_program(actor, program_id))


def _number(value, name: str, low: float, high: float, errors: dict, key: str) -> float | None:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        errors.setdefault(key, []).append(_l("This field is required."))
        return None
    try:
        number = float(value.strip().replace(",", ".") if isinstance(value, str) else value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        errors.setdefault(key, []).append(_l("Must be a number."))
        return None
    if not low <= number <= high:
        if name == "latitude":
            errors.setdefault(key, []).append(_l("A latitude is between -90 and 90."))
        else:
            errors.setdefault(key, []).append(_l("A longitude is between -180 and 180."))
        return None
    return number


def _moment(value, key: str, tz_name: str | None, errors: dict) -> dt.datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > 40:
        errors.setdefault(key, []).append(_l("Use a date and time like 2026-12-24T18:00."))
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        errors.setdefault(key, []).append(_l("Use a date and time like 2026-12-24T18:00."))
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.zone(tz_name))
    return moment.astimezone(dt.timezone.utc)


def parse(data, tz_name: str | None) -> tuple[list[dict], dt.datetime | None, dt.datetime | None]:
    """The validated locations and offer dates, or a ValidationError with a message per field
    (``locations.<i>.latitude`` …, ``relevant_from``, ``relevant_until``)."""
    if not isinstance(data, dict):
        raise ValidationError(_l("The request body must be a JSON object."))
    errors: dict = {}
    raw = data.get("locations")
    raw = [] if raw is None else raw
    locations: list[dict] = []
    if not isinstance(raw, list):
        errors["locations"] = [_l("Must be a list of locations.")]
        raw = []
    elif len(raw) > MAX_LOCATIONS:
        errors["locations"] = [_l("At most %(n)s locations: Apple Wallet ignores any more.", n=MAX_LOCATIONS)]
        raw = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            errors[f"locations.{i}"] = [_l("Must be an object with latitude and longitude.")]
            continue
        lat = _number(item.get("latitude"), "latitude", -90, 90, errors, f"locations.{i}.latitude")
        lon = _number(item.get("longitude"), "longitude", -180, 180, errors, f"locations.{i}.longitude")
        text = item.get("relevant_text") or ""
        if not isinstance(text, str):
            errors[f"locations.{i}.relevant_text"] = [_l("Must be text.")]
            text = ""
        text = text.strip()
        if len(text) > MAX_RELEVANT_TEXT:
            errors[f"locations.{i}.relevant_text"] = [_l("At most %(n)s characters.", n=MAX_RELEVANT_TEXT)]
        elif FORBIDDEN_CHARS_RE.search(text):
            errors[f"locations.{i}.relevant_text"] = [_l("Contains characters that are not allowed.")]
        if lat is not None and lon is not None:
            locations.append({"latitude": lat, "longitude": lon, "relevant_text": text})
    start = _moment(data.get("relevant_from"), "relevant_from", tz_name, errors)
    end = _moment(data.get("relevant_until"), "relevant_until", tz_name, errors)
    if "relevant_from" not in errors and "relevant_until" not in errors:
        if (start is None) != (end is None):
            key = "relevant_until" if end is None else "relevant_from"
            errors[key] = [_l("Set both the start and the end of the offer, or neither.")]
        elif start is not None and end <= start:
            errors["relevant_until"] = [_l("The end must be after the start.")]
        elif start is not None and end - start > dt.timedelta(days=MAX_OFFER_DAYS):
            errors["relevant_until"] = [_l("An offer lasts at most a year.")]
    if errors:
        raise ValidationError(fields=errors)
    return locations, start, end


def update(actor: Actor, program_id: int, data) -> dict:
    """Replace the program's locations and offer dates. A change reaches the passes already in wallets (the same
    fan-out as a design change: ``updated_at`` moves and every card gets one coalesced update)."""
    program = programs.get_program(actor, program_id)
    locations, start, end = parse(data, program.vendor.timezone)
    before = to_dict(program)
    db.session.execute(delete(ProgramLocation).where(ProgramLocation.program_id == program.id))
    for position, loc in enumerate(locations):
        db.session.add(ProgramLocation(program_id=program.id, position=position, **loc))
    program.relevant_from, program.relevant_until = start, end
    db.session.flush()
    after = to_dict(program)
    if after != before:
        program.updated_at = clock.now()
        db.session.flush()
        wallet_outbox.enqueue_program(program.id, "design")
    return after


def pass_fields(program: LoyaltyProgram, locations: list[ProgramLocation]) -> dict:
    """What pass.json gets: only what the shop set. ``relevantDates`` (iOS 18) with the offer's start and end;
    ``relevantDate`` (earlier iOS, one moment) its start."""
    fields: dict = {}
    if locations:
        fields["locations"] = []
        for loc in locations:
            item = {"latitude": loc.latitude, "longitude": loc.longitude}
            if loc.relevant_text:
                item["relevantText"] = loc.relevant_text
            fields["locations"].append(item)
    if program.relevant_from is not None and program.relevant_until is not None:
        start = program.relevant_from.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        end = program.relevant_until.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        fields["relevantDates"] = [{"startDate": start, "endDate": end}]
        fields["relevantDate"] = start
    return fields


def google_class_fields(locations: list[ProgramLocation]) -> dict:
    """Google's LoyaltyClass ``merchantLocations`` (latitude/longitude only; Google words its own notification)."""
    if not locations:
        return {}
    return {"merchantLocations": [{"latitude": loc.latitude, "longitude": loc.longitude} for loc in locations]}

"""Apple's PassKit web service: /api/v1/loyalty/apple/v1/… (the pass's webServiceURL is …/loyalty/apple).

Bodies and status codes follow Apple's reference ("Adding a Web Service to Update Passes"); our JSON error
envelope is used only where Apple defines no body. A wrong or missing ``ApplePass`` token is a 401 that looks the
same whether the serial exists or not.
"""
from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, jsonify, request

from ... import storage
from ...extensions import limiter
from ...services.wallet import apple_service, passes
from ...web import json_error

log = logging.getLogger("portal.wallet.apple_devices")

bp = Blueprint("apple_api", __name__, url_prefix="/loyalty/apple/v1")


def _known_pass_type(pass_type_id: str) -> bool:
    return passes.available() and pass_type_id == current_app.config["APPLE_PASS_TYPE_ID"]


def _not_found():
    return json_error(404, "not_found", "Not found.")


def _unauthorized():
    response = json_error(401, "unauthorized", "Authentication is required.")
    response.headers["WWW-Authenticate"] = "ApplePass"
    return response


def _card_or_none(serial: str):
    """``(card, retired)`` if the request carries the pass's token (see ``apple_service.authorized_pass``)."""
    return apple_service.authorized_pass(serial, request.headers.get("Authorization"))


def _valid_ids(device: str | None = None, serial: str | None = None) -> bool:
    return (device is None or bool(apple_service.DEVICE_RE.match(device))) and (
        serial is None or bool(apple_service.SERIAL_RE.match(serial)))


@bp.post("/devices/<deviceLibraryIdentifier>/registrations/<passTypeIdentifier>/<serialNumber>")
def register_device(deviceLibraryIdentifier, passTypeIdentifier, serialNumber):  # noqa: N803 (Apple's names)
    device, pass_type_id, serial = deviceLibraryIdentifier, passTypeIdentifier, serialNumber
    if not _known_pass_type(pass_type_id):
        return _not_found()
    card = _card_or_none(serial)
    if card is None:
        return _unauthorized()
    if not _valid_ids(device):
        return json_error(400, "bad_request", "Invalid device library identifier.")
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    push_token = body.get("pushToken") if isinstance(body, dict) else None
    if not isinstance(push_token, str) or not apple_service.PUSH_TOKEN_RE.match(push_token):
        return json_error(400, "bad_request", "pushToken is missing or malformed.")
    created = apple_service.register(device, pass_type_id, serial, push_token)
    return Response(status=201 if created else 200)


@bp.delete("/devices/<deviceLibraryIdentifier>/registrations/<passTypeIdentifier>/<serialNumber>")
def unregister_device(deviceLibraryIdentifier, passTypeIdentifier, serialNumber):  # noqa: N803
    device, pass_type_id, serial = deviceLibraryIdentifier, passTypeIdentifier, serialNumber
    if not _known_pass_type(pass_type_id):
        return _not_found()
    if _card_or_none(serial) is None:
        return _unauthorized()
    if _valid_ids(device):
        apple_service.unregister(device, pass_type_id, serial)
    return Response(status=200)


@bp.get("/devices/<deviceLibraryIdentifier>/registrations/<passTypeIdentifier>")
def updated_serials(deviceLibraryIdentifier, passTypeIdentifier):  # noqa: N803
    device, pass_type_id = deviceLibraryIdentifier, passTypeIdentifier
    if not _known_pass_type(pass_type_id):
        return _not_found()
    if not _valid_ids(device):
        return Response(status=204)
    serials, tag = apple_service.updated_serials(device, pass_type_id, request.args.get("passesUpdatedSince"))
    if not serials:
        return Response(status=204)
    return jsonify({"serialNumbers": serials, "lastUpdated": tag})


@bp.get("/passes/<passTypeIdentifier>/<serialNumber>")
@storage.writes  # notes the fetch in the card's pass health
def latest_pass(passTypeIdentifier, serialNumber):  # noqa: N803
    pass_type_id, serial = passTypeIdentifier, serialNumber
    if not _known_pass_type(pass_type_id):
        return _not_found()
    found = apple_service.fetch_pass(serial, request.headers.get("Authorization"))
    if found is None:
        return _unauthorized()
    card, retired = found
    return pass_response(card, attachment=False, retired=retired)


@bp.post("/log")
@limiter.limit(lambda: current_app.config["APPLE_LOG_RATE_LIMIT"])
def device_log():
    """Unauthenticated (Apple sends no token): rate-limited per client, and nothing reaches the log unescaped."""
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = {}
    for line in apple_service.device_log_lines(body):
        log.warning("Apple Wallet device log: %s", line)
    return Response(status=200)


def pass_response(card, *, attachment: bool, retired=None) -> Response:
    """The .pkpass with Last-Modified (and 304 on a matching If-Modified-Since), shared with the card page;
    voided for an erased card or a retired identity of it (``retired``)."""
    if passes.not_modified_since(card, request.headers.get("If-Modified-Since"), retired):
        response = Response(status=304)
    else:
        response = Response(passes.build(card, retired), mimetype=passes.PKPASS_MIMETYPE)
        if attachment:
            response.headers["Content-Disposition"] = f'attachment; filename="{card.program.slug}.pkpass"'
    response.headers["Last-Modified"] = passes.format_http_date(passes.http_last_modified(card, retired))
    response.headers["Cache-Control"] = "no-cache, private"
    return response

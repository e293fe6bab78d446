"""Google Wallet save/delete callbacks: verifying Google's signed message (pure protocol, no database).

Google posts to each class's ``callbackOptions.url`` a JSON object signed with the *ECv2SigningOnly* protocol
(the one of Google Pay's ``PaymentMethodTokenRecipient`` in Tink)::

    {"signature": "<base64 DER ECDSA>",
     "intermediateSigningKey": {"signedKey": "{\\"keyValue\\":\\"<base64 X.509 SPKI>\\",\\"keyExpiration\\":\\"<ms>\\"}",
                                "signatures": ["<base64 DER ECDSA>", …]},
     "protocolVersion": "ECv2SigningOnly",
     "signedMessage": "{\\"classId\\":…,\\"objectId\\":…,\\"expTimeMillis\\":…,\\"eventType\\":\\"save|del\\",
                        \\"nonce\\":…}"}

Verification, in order (any failure refuses the message):

1. exactly those four members, ``protocolVersion`` ``ECv2SigningOnly``; the intermediate key exactly
   ``signedKey`` and ``signatures``;
2. one of ``signatures`` verifies, with one of Google's root signing keys for this protocol that has not expired
   (``https://pay.google.com/gp/m/issuer/keys``), over ``LV("GooglePayPasses") ‖ LV("ECv2SigningOnly") ‖
   LV(signedKey)``;
3. the intermediate key's ``keyExpiration`` (milliseconds since the epoch) is in the future;
4. ``signature`` verifies with the intermediate key over ``LV("GooglePayPasses") ‖ LV(<issuer id>) ‖
   LV("ECv2SigningOnly") ‖ LV(signedMessage)`` — the recipient is our issuer id, so a message for another issuer
   does not verify;
5. the message's ``expTimeMillis`` is in the future.

``LV(s)`` is the UTF-8 bytes of ``s`` preceded by their length as 4 bytes, little-endian. Signatures are ECDSA
over P-256 with SHA-256, DER-encoded. Everything is checked with ``cryptography``.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..errors import CallbackExpired, CallbackKeyExpired, CallbackRefused, CallbackSignatureInvalid

SENDER_ID = "GooglePayPasses"
PROTOCOL = "ECv2SigningOnly"
KEYS_URL = "https://pay.google.com/gp/m/issuer/keys"
EVENT_TYPES = ("save", "del")
MAX_BODY = 64 * 1024


class UnknownSigner(CallbackSignatureInvalid):
    """No root key we hold verifies the intermediate key: perhaps Google rotated its keys (fetch them again)."""


@dataclasses.dataclass(frozen=True)
class RootKey:
    public_key: ec.EllipticCurvePublicKey
    expires_ms: int


@dataclasses.dataclass(frozen=True)
class CallbackMessage:
    class_id: str
    object_id: str
    event_type: str  # "save" | "del"
    exp_time_ms: int
    nonce: str
    count: int | None


def length_value(*chunks: str) -> bytes:
    return b"".join(struct.pack("<I", len(data)) + data for data in (c.encode("utf-8") for c in chunks))


def _public_key(b64: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(b64, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise CallbackRefused() from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CallbackRefused()
    return key


def _millis(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        return int(value)
    return None


def parse_root_keys(document: dict, now_ms: int) -> list[RootKey]:
    """Google's published keys for ``ECv2SigningOnly`` that have not expired (a key without keyExpiration is
    skipped, as Tink does for every protocol after ECv1)."""
    keys = []
    for item in (document.get("keys") if isinstance(document, dict) else None) or []:
        if not isinstance(item, dict) or item.get("protocolVersion") != PROTOCOL:
            continue
        expires = _millis(item.get("keyExpiration"))
        if expires is None or expires <= now_ms or not isinstance(item.get("keyValue"), str):
            continue
        try:
            keys.append(RootKey(_public_key(item["keyValue"]), expires))
        except CallbackRefused:
            continue
    return keys


def _signature_ok(key: ec.EllipticCurvePublicKey, signature_b64, data: bytes) -> bool:
    if not isinstance(signature_b64, str):
        return False
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def parse(body: bytes) -> dict:
    """The sealed message's shape (step 1), checked before any key is needed; ``CallbackRefused`` if wrong."""
    if len(body) > MAX_BODY:
        raise CallbackRefused()
    try:
        sealed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise CallbackRefused() from exc
    if not isinstance(sealed, dict) or set(sealed) != {"signature", "intermediateSigningKey", "protocolVersion",
                                                        "signedMessage"}:
        raise CallbackRefused()
    if sealed["protocolVersion"] != PROTOCOL or not isinstance(sealed["signedMessage"], str):
        raise CallbackRefused()
    intermediate = sealed["intermediateSigningKey"]
    if not isinstance(intermediate, dict) or set(intermediate) != {"signedKey", "signatures"}:
        raise CallbackRefused()
    signed_key, signatures = intermediate["signedKey"], intermediate["signatures"]
    if not isinstance(signed_key, str) or not isinstance(signatures, list) or not signatures:
        raise CallbackRefused()
    return sealed


def verify(body: bytes | dict, root_keys: list[RootKey], recipient_id: str, now_ms: int) -> CallbackMessage:
    """The verified message, or a ``CallbackRefused`` (malformed), ``CallbackSignatureInvalid`` (``UnknownSigner``
    when no root key signed the intermediate key), ``CallbackKeyExpired`` or ``CallbackExpired``. ``body``: the
    raw bytes, or what ``parse`` returned for them."""
    sealed = body if isinstance(body, dict) else parse(body)
    signed_key = sealed["intermediateSigningKey"]["signedKey"]
    signatures = sealed["intermediateSigningKey"]["signatures"]

    key_bytes = length_value(SENDER_ID, PROTOCOL, signed_key)
    if not any(_signature_ok(root.public_key, sig, key_bytes) for root in root_keys if root.expires_ms > now_ms
               for sig in signatures):
        raise UnknownSigner()
    try:
        key_info = json.loads(signed_key)
    except (ValueError, RecursionError) as exc:
        raise CallbackRefused() from exc
    if not isinstance(key_info, dict) or not isinstance(key_info.get("keyValue"), str):
        raise CallbackRefused()
    key_expires = _millis(key_info.get("keyExpiration"))
    if key_expires is None:
        raise CallbackRefused()
    if key_expires <= now_ms:
        raise CallbackKeyExpired()
    intermediate_key = _public_key(key_info["keyValue"])

    message_bytes = length_value(SENDER_ID, recipient_id, PROTOCOL, sealed["signedMessage"])
    if not _signature_ok(intermediate_key, sealed["signature"], message_bytes):
        raise CallbackSignatureInvalid()

    try:
        message = json.loads(sealed["signedMessage"])
    except (ValueError, RecursionError) as exc:
        raise CallbackRefused() from exc
    if not isinstance(message, dict):
        raise CallbackRefused()
    exp = _millis(message.get("expTimeMillis"))
    fields = (message.get("classId"), message.get("objectId"), message.get("nonce"))
    if exp is None or message.get("eventType") not in EVENT_TYPES or not all(
            isinstance(v, str) and 0 < len(v) <= 200 for v in fields):
        raise CallbackRefused()
    if exp <= now_ms:
        raise CallbackExpired()
    count = message.get("count")
    return CallbackMessage(class_id=fields[0], object_id=fields[1], event_type=message["eventType"],
                           exp_time_ms=exp, nonce=fields[2],
                           count=count if isinstance(count, int) and not isinstance(count, bool) else None)

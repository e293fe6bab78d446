"""The byte format of Google's signed messages, checked against a published vector (no stand-in involved).

Tink's PaymentMethodTokenRecipientTest signs an ECv1 token over ``toLengthValue(sender, recipient, protocol,
signedMessage)``, the same construction ECv2SigningOnly uses for the message of a Wallet callback; its signature
must verify with our ``length_value`` (4-byte little-endian lengths) or we would refuse every real callback.
"""
from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from portal.services.errors import CallbackRefused
from portal.services.wallet import google_callbacks

TINK_ECV1_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPYnHwS8uegWAewQtlxizmLFynwHcxRT1PK07cDA6/C4sXrVI1SzZCUx8U8S0LjMrT6ird"
                 "/VW7be3Mz6t/srtRQ==")
TINK_SIGNED_MESSAGE = (
    '{"tag":"ZVwlJt7dU8Plk0+r8rPF8DmPTvDiOA1UAoNjDV+SqDE\\u003d",'
    '"ephemeralPublicKey":"BPhVspn70Zj2Kkgu9t8+ApEuUWsI/zos5whGCQBlgOkuYagOis7qsrcbQrcprjvTZO3XOU+Qbcc28FSgsRtcgQE'
    '\\u003d","encryptedMessage":"12jUObueVTdy"}')
TINK_SIGNATURE = "MEQCIDxBoUCoFRGReLdZ/cABlSSRIKoOEFoU3e27c14vMZtfAiBtX3pGMEpnw6mSAbnagCCgHlCk3NcFwWYEyxIE6KGZVA=="


def _verify(sender, recipient, protocol, message):
    key = serialization.load_der_public_key(base64.b64decode(TINK_ECV1_KEY))
    key.verify(base64.b64decode(TINK_SIGNATURE), google_callbacks.length_value(sender, recipient, protocol, message),
               ec.ECDSA(hashes.SHA256()))


def test_length_value_matches_tinks_published_signature():
    _verify("Google", "someRecipient", "ECv1", TINK_SIGNED_MESSAGE)


def test_the_vector_fails_for_another_recipient_or_a_changed_message():
    with pytest.raises(InvalidSignature):
        _verify("Google", "otherRecipient", "ECv1", TINK_SIGNED_MESSAGE)
    with pytest.raises(InvalidSignature):
        _verify("Google", "someRecipient", "ECv1", TINK_SIGNED_MESSAGE.replace("12j", "13j"))


def test_length_value_layout():
    assert google_callbacks.length_value("ab", "") == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"
    assert google_callbacks.length_value("é") == b"\x02\x00\x00\x00\xc3\xa9"  # UTF-8 bytes are counted


def test_root_keys_for_other_protocols_or_expired_are_not_used():
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    value = base64.b64encode(key).decode()
    doc = {"keys": [{"keyValue": value, "protocolVersion": "ECv2", "keyExpiration": "9999999999999"},
                    {"keyValue": value, "protocolVersion": "ECv2SigningOnly", "keyExpiration": "1000"},
                    {"keyValue": value, "protocolVersion": "ECv2SigningOnly"},
                    {"keyValue": "not base64!", "protocolVersion": "ECv2SigningOnly", "keyExpiration": "9999999999999"},
                    {"keyValue": value, "protocolVersion": "ECv2SigningOnly", "keyExpiration": "9999999999999"}]}
    keys = google_callbacks.parse_root_keys(doc, now_ms=2000)
    assert [k.expires_ms for k in keys] == [9999999999999]


def test_a_body_too_large_or_with_extra_members_is_malformed():
    with pytest.raises(CallbackRefused):
        google_callbacks.verify(b" " * (google_callbacks.MAX_BODY + 1), [], "1", 0)
    with pytest.raises(CallbackRefused):
        google_callbacks.verify(b'{"signature":"","intermediateSigningKey":{"signedKey":"","signatures":[""]},'
                                b'"protocolVersion":"ECv2SigningOnly","signedMessage":"","extra":1}', [], "1", 0)

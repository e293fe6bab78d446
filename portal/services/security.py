"""Passwords, API keys and PIN digests."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import bcrypt
from flask import current_app

API_KEY_PREFIX = "lk_"


#: Prefix of the password hashes made since bcrypt 5 (which refuses passwords over 72 bytes): the stored value is
#: ``bcrypt-sha256$`` + a bcrypt hash of ``base64(HMAC-SHA256(key=<that hash's bcrypt salt>, password))`` — 44
#: ASCII bytes whatever the password's length, so every length hashes and verifies alike. Hashes without the
#: prefix are plain bcrypt (made before) and still verify, on the first 72 bytes as the bcrypt that made them did.
PASSWORD_PREFIX = "bcrypt-sha256$"


def _prehash(password: str, salt: bytes) -> bytes:
    return base64.b64encode(hmac.new(salt, password.encode(), hashlib.sha256).digest())


def hash_password(password: str) -> str:
    rounds = current_app.config.get("BCRYPT_ROUNDS", 12)
    salt = bcrypt.gensalt(rounds)
    return PASSWORD_PREFIX + bcrypt.hashpw(_prehash(password, salt), salt).decode()


# A valid hash to compare against when the user does not exist, so login timing does not reveal emails.
_DUMMY_HASH: dict[int, str] = {}


def _dummy_check(password: str) -> bool:
    """One check of the same cost as a real one (one HMAC, one bcrypt of ``BCRYPT_ROUNDS``), always False."""
    rounds = current_app.config.get("BCRYPT_ROUNDS", 12)
    if rounds not in _DUMMY_HASH:
        _DUMMY_HASH[rounds] = hash_password(secrets.token_urlsafe(16))
    _check(password, _DUMMY_HASH[rounds])
    return False


def _check(password: str, password_hash: str) -> bool:
    if password_hash.startswith(PASSWORD_PREFIX):
        stored = password_hash[len(PASSWORD_PREFIX):].encode()
        return bcrypt.checkpw(_prehash(password, stored[:29]), stored)
    return bcrypt.checkpw(password.encode()[:72], password_hash.encode())  # plain bcrypt: 72 bytes at most


def check_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches; exactly one bcrypt check whatever happens (no hash: a dummy one), so the time
    taken says nothing about whether an account exists."""
    if not password_hash:
        return _dummy_check(password)
    try:
        return _check(password, password_hash)
    except ValueError:  # a damaged hash, or a NUL byte for a plain bcrypt hash
        return _dummy_check(password)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def pin_lookup_digest(program_id: int, pin: str) -> str:
    """HMAC-SHA256 keyed with the server's PIN pepper (kept outside the database)."""
    pepper = current_app.config["PIN_PEPPER"].encode()
    return hmac.new(pepper, f"{program_id}:{pin}".encode(), hashlib.sha256).hexdigest()


def hash_pin(lookup: str) -> str:
    rounds = current_app.config.get("BCRYPT_ROUNDS", 12)
    return bcrypt.hashpw(lookup.encode(), bcrypt.gensalt(rounds)).decode()


def check_pin_hash(lookup: str, pin_hash: str) -> bool:
    try:
        return bcrypt.checkpw(lookup.encode(), pin_hash.encode())
    except ValueError:
        return False

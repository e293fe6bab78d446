"""Passwords, API keys and PIN digests."""
from __future__ import annotations

import hashlib
import hmac
import secrets

import bcrypt
from flask import current_app

API_KEY_PREFIX = "lk_"


def hash_password(password: str) -> str:
    rounds = current_app.config.get("BCRYPT_ROUNDS", 12)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


# A valid hash to compare against when the user does not exist, so login timing does not reveal emails.
_DUMMY_HASH: dict[int, str] = {}


def check_password(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        rounds = current_app.config.get("BCRYPT_ROUNDS", 12)
        if rounds not in _DUMMY_HASH:
            _DUMMY_HASH[rounds] = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds)).decode()
        bcrypt.checkpw(password.encode(), _DUMMY_HASH[rounds].encode())
        return False
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:
        return False


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

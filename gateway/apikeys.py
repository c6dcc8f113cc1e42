"""API key format: `<key id>.<secret>`; only the SHA-256 of the secret is stored."""

from __future__ import annotations

import hmac
import re
import secrets

from .digest import lookup_hash
from .ids import new_id

# What new_api_key makes; anything else (a NUL, say) is no key and never reaches the database.
_KEY_ID = re.compile(r"key_[A-Za-z0-9]{1,60}")
# What the secret of an unknown key id is compared with (the same work as a wrong secret);
# no secret hashes to it.
NO_KEY_HASH = "0" * 64


def hash_secret(secret: str) -> str:
    return lookup_hash(secret)


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (key id, the full key shown once to the user, the hash to store)."""
    key_id = new_id("key")
    secret = secrets.token_urlsafe(32)
    return key_id, f"{key_id}.{secret}", hash_secret(secret)


def split_api_key(presented: str) -> tuple[str, str] | None:
    key_id, sep, secret = presented.partition(".")
    if not sep or not secret or len(presented) > 200 or not _KEY_ID.fullmatch(key_id):
        return None
    if not (secret.isascii() and secret.isprintable()):
        return None
    return key_id, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)

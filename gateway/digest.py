"""The SHA-256 a random secret is stored and looked up by: the secret itself is never stored."""

from __future__ import annotations

import hashlib


def lookup_hash(secret: str) -> str:
    """Hex SHA-256 of ``secret``. Enough for random secrets of 128 bits or more (API keys,
    OAuth states and links, session and webhook-URL tokens): nothing to guess, so no key."""
    return hashlib.sha256(secret.encode()).hexdigest()

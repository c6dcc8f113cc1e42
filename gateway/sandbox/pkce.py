"""PKCE (RFC 7636): deriving a code challenge from a verifier and checking one against the other."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Literal

# RFC 7636 §4.1: 43 to 128 characters from the unreserved set.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
METHODS = ("S256", "plain")
# base64url is the RFC; TikTok's desktop flow is documented with a hex digest instead.
Encoding = Literal["base64url", "hex"]


def s256_challenge(verifier: str, *, encoding: Encoding = "base64url") -> str:
    """The S256 challenge of ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    if encoding == "hex":
        return digest.hex()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(
    verifier: str, challenge: str, method: str, *, encoding: Encoding = "base64url"
) -> bool:
    """Whether ``verifier`` is well formed and answers ``challenge`` under ``method``."""
    if not _VERIFIER.match(verifier):
        return False
    if method == "S256":
        expected = s256_challenge(verifier, encoding=encoding)
    elif method == "plain":
        expected = verifier
    else:
        return False
    return hmac.compare_digest(expected.encode(), challenge.encode())

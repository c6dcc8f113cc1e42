"""Why a token or code was refused: the token statuses and the InvalidGrant error."""

from __future__ import annotations

from enum import StrEnum


class TokenStatus(StrEnum):
    """What a presented token is, so an emulator can answer with its platform's exact error."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    # The request carried no token at all (some platforms answer that with another error).
    MISSING = "missing"


class InvalidGrant(Exception):
    """A refresh token, code or token to exchange was refused; ``reason`` says why.

    Reasons: a TokenStatus value (``unknown``, ``expired``, ``revoked``) or, for codes, ``used``,
    ``client_mismatch``, ``redirect_uri_mismatch``, ``pkce_required``, ``pkce_mismatch``,
    ``pkce_unexpected``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def status_at(now: float, expires_at: float | None, revoked: bool) -> TokenStatus:
    """The status of a token at ``now``; a revoked token reads revoked even once expired."""
    if revoked:
        return TokenStatus.REVOKED
    if expires_at is not None and now >= expires_at:
        return TokenStatus.EXPIRED
    return TokenStatus.ACTIVE

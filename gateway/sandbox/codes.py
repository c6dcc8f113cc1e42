"""Authorization codes: single use, short lived on the sandbox clock, bound to client and PKCE."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .clock import SandboxClock
from .grants import InvalidGrant, TokenStatus
from .pkce import METHODS, Encoding, verifier_matches


@dataclass(slots=True)
class AuthorizationCode:
    """An authorization code and what it was issued for."""

    code: str
    client_id: str
    redirect_uri: str | None
    scopes: tuple[str, ...]
    subject: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    used: bool = False


class AuthorizationCodes:
    """The codes a sandbox's consent page handed out, until they are redeemed or reset."""

    def __init__(
        self, clock: SandboxClock, *, ttl: float = 600.0, pkce_encoding: Encoding = "base64url"
    ) -> None:
        self._clock = clock
        self.ttl = ttl
        self.pkce_encoding = pkce_encoding
        self._codes: dict[str, AuthorizationCode] = {}

    def issue(
        self,
        client_id: str,
        redirect_uri: str | None,
        scopes: tuple[str, ...] | list[str],
        code_challenge: str | None,
        code_challenge_method: str | None,
        subject: str,
    ) -> str:
        if code_challenge and code_challenge_method is None:
            code_challenge_method = "plain"  # RFC 7636 §4.3: the default when none is named
        if code_challenge and code_challenge_method not in METHODS:
            raise ValueError(f"code_challenge_method must be one of {METHODS}")
        code = secrets.token_urlsafe(24)
        self._codes[code] = AuthorizationCode(
            code=code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=tuple(scopes),
            subject=subject,
            code_challenge=code_challenge or None,
            code_challenge_method=code_challenge_method if code_challenge else None,
            expires_at=self._clock.timestamp() + self.ttl,
        )
        return code

    def redeem(
        self, code: str, client_id: str, redirect_uri: str | None, code_verifier: str | None
    ) -> AuthorizationCode:
        record = self._codes.get(code)
        if record is None:
            raise InvalidGrant(TokenStatus.UNKNOWN, "unknown authorization code")
        if record.used:
            raise InvalidGrant("used", "authorization code was already used")
        # Spent even when this attempt fails, so a stolen code cannot be tried twice.
        record.used = True
        if self._clock.timestamp() >= record.expires_at:
            raise InvalidGrant(TokenStatus.EXPIRED, "authorization code expired")
        if client_id != record.client_id:
            raise InvalidGrant("client_mismatch", "code was issued to another client")
        if redirect_uri != record.redirect_uri:
            raise InvalidGrant("redirect_uri_mismatch", "redirect_uri differs from authorization")
        if record.code_challenge is None and code_verifier:
            # RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a PKCE
            # downgrade (a code from a flow that skipped PKCE, injected into one that did not).
            raise InvalidGrant("pkce_unexpected", "code_verifier sent for a code without PKCE")
        if record.code_challenge is not None:
            if not code_verifier:
                raise InvalidGrant("pkce_required", "code_verifier is required")
            if not verifier_matches(
                code_verifier,
                record.code_challenge,
                record.code_challenge_method or "plain",
                encoding=self.pkce_encoding,
            ):
                raise InvalidGrant("pkce_mismatch", "code_verifier does not match the challenge")
        return record

    def clear(self) -> None:
        self._codes.clear()

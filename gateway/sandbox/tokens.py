"""Fake OAuth tokens on the sandbox clock: issue, check, refresh, revoke, exchange, codes."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .clock import SandboxClock, rfc3339
from .codes import AuthorizationCode, AuthorizationCodes
from .grants import InvalidGrant, TokenStatus, status_at
from .pkce import Encoding


def _seconds(start: float, end: float | None) -> int | None:
    return None if end is None or math.isinf(end) else round(end - start)


@dataclass(slots=True)
class IssuedToken:
    """One access token (with the refresh token that came with it, if any)."""

    access_token: str
    subject: str
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float | None
    refresh_token: str | None
    refresh_expires_at: float | None
    # Tokens descending from one authorization share a grant; revoking a refresh token ends it.
    grant: str
    extra: dict[str, Any] = field(default_factory=dict)
    revoked: bool = False

    @property
    def expires_in(self) -> int | None:
        """Lifetime at issue in seconds (the ``expires_in`` of a token answer); None: no expiry."""
        return _seconds(self.issued_at, self.expires_at)

    @property
    def refresh_expires_in(self) -> int | None:
        """The refresh token's remaining lifetime at issue; None when it never expires."""
        return _seconds(self.issued_at, self.refresh_expires_at)

    def status(self, now: float) -> TokenStatus:
        return status_at(now, self.expires_at, self.revoked)


class TokenCheck(NamedTuple):
    """The result of looking a token up: its status and, unless unknown, the token."""

    status: TokenStatus
    token: IssuedToken | None


@dataclass(slots=True)
class _Refresh:
    token: str
    grant: str
    expires_at: float | None
    access_ttl: float | None
    refresh_ttl: float
    source: IssuedToken
    revoked: bool = False


class TokenStore:
    """Every token a sandbox issued. Lifetimes are measured on the sandbox clock.

    ``access_ttl=None`` issues a token that never expires (Meta Page tokens, Mailchimp);
    ``refresh_ttl=None`` issues no refresh token and ``math.inf`` one that never expires (Google).
    """

    def __init__(
        self,
        clock: SandboxClock,
        *,
        code_ttl: float = 600.0,
        pkce_encoding: Encoding = "base64url",
        access_prefix: str = "",
        refresh_prefix: str = "",
    ) -> None:
        self._clock = clock
        # Platforms' tokens have recognisable shapes (TikTok ``act.``/``rft.``, Meta ``EAA``).
        self._access_prefix = access_prefix
        self._refresh_prefix = refresh_prefix
        self._access: dict[str, IssuedToken] = {}
        self._refresh: dict[str, _Refresh] = {}
        self.codes = AuthorizationCodes(clock, ttl=code_ttl, pkce_encoding=pkce_encoding)

    def issue(
        self,
        subject: str,
        scopes: tuple[str, ...] | list[str],
        *,
        access_ttl: float | None,
        refresh_ttl: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> IssuedToken:
        """A new grant: an access token and, when ``refresh_ttl`` is given, a refresh token."""
        grant = secrets.token_hex(8)
        token = self._new_access(subject, tuple(scopes), access_ttl, grant, dict(extra or {}))
        if refresh_ttl is not None:
            self._attach_refresh(token, access_ttl, refresh_ttl)
        return token

    def check(self, access_token: str) -> TokenCheck:
        """Look up an access token: active, expired, revoked or unknown."""
        token = self._access.get(access_token)
        if token is None:
            return TokenCheck(TokenStatus.UNKNOWN, None)
        return TokenCheck(token.status(self._clock.timestamp()), token)

    def validate(self, access_token: str) -> IssuedToken | None:
        """The token if it is active, else None (use ``check`` to tell why)."""
        status, token = self.check(access_token)
        return token if status is TokenStatus.ACTIVE else None

    def refresh(self, refresh_token: str, *, rotate: bool) -> IssuedToken:
        """A new access token for the grant, with the lifetime the grant was issued with.

        ``rotate=True`` also replaces the refresh token (the old one stops working; the new one
        lives ``refresh_ttl`` from now). Otherwise the same refresh token keeps its original
        expiry, as LinkedIn's does. Earlier access tokens stay valid until they expire.
        """
        record = self._refresh.get(refresh_token)
        if record is None:
            raise InvalidGrant(TokenStatus.UNKNOWN, "unknown refresh token")
        status = status_at(self._clock.timestamp(), record.expires_at, record.revoked)
        if status is not TokenStatus.ACTIVE:
            raise InvalidGrant(status, f"refresh token is {status}")
        source = record.source
        token = self._new_access(
            source.subject, source.scopes, record.access_ttl, record.grant, dict(source.extra)
        )
        if rotate:
            record.revoked = True
            self._attach_refresh(token, record.access_ttl, record.refresh_ttl)
        else:
            token.refresh_token, token.refresh_expires_at = record.token, record.expires_at
        return token

    def exchange(
        self, access_token: str, *, access_ttl: float | None, extra: dict[str, Any] | None = None
    ) -> IssuedToken:
        """A new token for an active one (Meta's long-lived exchange); the old one lives on."""
        status, old = self.check(access_token)
        if old is None or status is not TokenStatus.ACTIVE:
            raise InvalidGrant(status, f"token to exchange is {status}")
        return self.issue(
            old.subject, old.scopes, access_ttl=access_ttl, extra={**old.extra, **(extra or {})}
        )

    def revoke(self, token: str) -> bool:
        """Revoke an access token, or a refresh token with its whole grant; False if unknown."""
        if (access := self._access.get(token)) is not None:
            access.revoked = True
            return True
        if (record := self._refresh.get(token)) is not None:
            self._revoke_grant(record.grant)
            return True
        return False

    def revoke_subject(self, subject: str) -> int:
        """Revoke every grant of ``subject`` (an app's permissions removed); how many grants."""
        grants = {t.grant for t in self._access.values() if t.subject == subject}
        for grant in grants:
            self._revoke_grant(grant)
        return len(grants)

    def of_subject(self, subject: str) -> list[IssuedToken]:
        """Every access token issued to ``subject`` (a permission removed from all of them)."""
        return [token for token in self._access.values() if token.subject == subject]

    def issue_code(
        self,
        client_id: str,
        redirect_uri: str | None,
        scopes: tuple[str, ...] | list[str],
        code_challenge: str | None,
        code_challenge_method: str | None,
        subject: str,
    ) -> str:
        """A single-use code living ``code_ttl`` seconds; no PKCE if ``code_challenge`` is None."""
        return self.codes.issue(
            client_id, redirect_uri, scopes, code_challenge, code_challenge_method, subject
        )

    def redeem_code(
        self, code: str, client_id: str, redirect_uri: str | None, code_verifier: str | None
    ) -> AuthorizationCode:
        """The code's grant, checked (client, redirect URI, PKCE); any attempt uses the code up."""
        return self.codes.redeem(code, client_id, redirect_uri, code_verifier)

    def listing(self) -> list[dict[str, Any]]:
        """Every access token issued, for ``GET /_control/state``; fake tokens, shown in full."""
        now = self._clock.timestamp()
        listed = []
        for token in self._access.values():
            refresh = self._refresh.get(token.refresh_token or "")
            listed.append(
                {
                    "accessToken": token.access_token,
                    "refreshToken": token.refresh_token,
                    "subject": token.subject,
                    "scopes": list(token.scopes),
                    "grant": token.grant,
                    "issuedAt": rfc3339(token.issued_at),
                    "expiresAt": _time_or_none(token.expires_at),
                    "refreshExpiresAt": _time_or_none(token.refresh_expires_at),
                    "status": token.status(now).value,
                    "refreshStatus": status_at(now, refresh.expires_at, refresh.revoked).value
                    if refresh
                    else None,
                    "extra": token.extra,
                }
            )
        return listed

    def clear(self) -> None:
        self._access.clear()
        self._refresh.clear()
        self.codes.clear()

    def _new_access(
        self,
        subject: str,
        scopes: tuple[str, ...],
        access_ttl: float | None,
        grant: str,
        extra: dict[str, Any],
    ) -> IssuedToken:
        now = self._clock.timestamp()
        token = IssuedToken(
            access_token=self._access_prefix + secrets.token_urlsafe(32),
            subject=subject,
            scopes=scopes,
            issued_at=now,
            expires_at=None if access_ttl is None else now + access_ttl,
            refresh_token=None,
            refresh_expires_at=None,
            grant=grant,
            extra=extra,
        )
        self._access[token.access_token] = token
        return token

    def _attach_refresh(
        self, token: IssuedToken, access_ttl: float | None, refresh_ttl: float
    ) -> None:
        value = self._refresh_prefix + secrets.token_urlsafe(32)
        expires_at = token.issued_at + refresh_ttl
        self._refresh[value] = _Refresh(
            value, token.grant, expires_at, access_ttl, refresh_ttl, token
        )
        token.refresh_token, token.refresh_expires_at = value, expires_at

    def _revoke_grant(self, grant: str) -> None:
        for access in self._access.values():
            if access.grant == grant:
                access.revoked = True
        for record in self._refresh.values():
            if record.grant == grant:
                record.revoked = True


def _time_or_none(timestamp: float | None) -> str | None:
    return None if timestamp is None or math.isinf(timestamp) else rfc3339(timestamp)

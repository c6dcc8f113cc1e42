"""The OAuth 2.0 client side, on authlib's protocol pieces, over a platform's outbound client."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from .. import clock
from ..errors import NeedsReauth, PermissionDenied, PlatformError, RateLimited, Transient
from ..outbound import parse_retry_after
from ..types import OAuth2Spec, TokenSet

if TYPE_CHECKING:
    from ..outbound import OutboundClient

# RFC 6749 §5.2 errors that mean the grant is gone and only the user can fix it.
REAUTH_ERRORS = frozenset({"invalid_grant"})
# Errors that are the operator's to fix (app credentials), not the user's.
CONFIG_ERRORS = frozenset({"invalid_client", "unauthorized_client", "unsupported_grant_type"})


class TokenEndpointError(PlatformError):
    """The token endpoint refused, with the RFC 6749 ``error`` code as ``platform_code``."""


class InvalidGrant(NeedsReauth):
    """``invalid_grant``: the code or refresh token is dead (believe it only after a re-read)."""

    code = "invalid_grant"


def pkce_challenge(verifier: str) -> str:
    return create_s256_code_challenge(verifier)


class OAuthClient:
    """One platform's OAuth client: builds authorization URLs and talks to the token endpoint.

    Platform quirks go through the connector's ``oauth_*`` hooks: extra authorize parameters,
    renamed client id parameters (TikTok's ``client_key``), Basic vs body client credentials.
    """

    def __init__(
        self,
        spec: OAuth2Spec,
        *,
        client_id: str,
        client_secret: str,
        http: OutboundClient,
        client_id_param: str = "client_id",
        basic_auth: bool = False,
    ) -> None:
        self.spec = spec
        self.client_id = client_id
        self.client_secret = client_secret
        self.http = http
        self.client_id_param = client_id_param
        self.basic_auth = basic_auth

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        code_verifier: str | None,
        scopes: tuple[str, ...],
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """The platform's consent URL (its real URL: the caller routes it to a sandbox)."""
        params: dict[str, Any] = dict(extra or {})
        if code_verifier is not None:
            params["code_challenge"] = pkce_challenge(code_verifier)
            params["code_challenge_method"] = "S256"
        url = prepare_grant_uri(
            self.spec.authorize_url,
            self.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.spec.scope_separator.join(scopes) if scopes else None,
            state=state,
            **params,
        )
        if self.client_id_param != "client_id":
            url = url.replace("client_id=", f"{self.client_id_param}=", 1)
        return url

    async def exchange_code(
        self, code: str, *, redirect_uri: str, code_verifier: str | None
    ) -> TokenSet:
        fields: dict[str, Any] = {"code": code}
        if code_verifier is not None:
            fields["code_verifier"] = code_verifier
        return await self._token_request("authorization_code", redirect_uri=redirect_uri, **fields)

    async def refresh(self, refresh_token: str, *, previous: TokenSet | None = None) -> TokenSet:
        """The refresh_token grant; a response without a new refresh token keeps the old one."""
        token = await self._token_request("refresh_token", refresh_token=refresh_token)
        if token.refresh_token is None:
            kept_expiry = previous.refresh_expires_at if previous else None
            token = TokenSet(
                access_token=token.access_token,
                refresh_token=refresh_token,
                expires_at=token.expires_at,
                refresh_expires_at=token.refresh_expires_at or kept_expiry,
                scopes=token.scopes if token.scopes is not None else (previous and previous.scopes),
                token_type=token.token_type,
                extra=token.extra,
            )
        return token

    async def revoke(self, token: str, *, hint: str | None = None) -> None:
        """RFC 7009 revocation, where the platform has an endpoint.

        The endpoint answers 200 even for a token that is already dead, so any error means
        the revocation did not happen.
        """
        if not self.spec.revoke_url:
            return
        fields = {"token": token, **({"token_type_hint": hint} if hint else {})}
        body = urlencode({**fields, **self._client_fields()})
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self._auth_headers()}
        async with self.http.post(
            self.spec.revoke_url, data=body, headers=headers, idempotent=True
        ) as response:
            if response.status >= 400:
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    payload = {}
                raise _token_error(
                    response.status,
                    payload if isinstance(payload, dict) else {},
                    response.headers.get("Retry-After"),
                )

    async def _token_request(self, grant_type: str, **fields: Any) -> TokenSet:
        body = prepare_token_request(grant_type, **fields, **self._client_fields())
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            **self._auth_headers(),
        }
        # A token request is not idempotent (codes are single use, refresh tokens rotate):
        # it is never retried once it may have reached the platform.
        async with self.http.post(
            self.spec.token_url, data=body, headers=headers, idempotent=False
        ) as response:
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                payload = {}
            if not isinstance(payload, dict):
                payload = {}
            if response.status >= 400 or "error" in payload:
                raise _token_error(response.status, payload, response.headers.get("Retry-After"))
        return parse_token_response(payload, self.spec)

    def _client_fields(self) -> dict[str, str]:
        if self.basic_auth:
            return {}
        return {self.client_id_param: self.client_id, "client_secret": self.client_secret}

    def _auth_headers(self) -> dict[str, str]:
        if not self.basic_auth:
            return {}
        pair = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def parse_token_response(payload: Mapping[str, Any], spec: OAuth2Spec) -> TokenSet:
    """A token response as a TokenSet; lifetimes from ``expires_in``, else the spec's fallback."""
    if not isinstance(payload.get("access_token"), str) or not payload["access_token"]:
        raise TokenEndpointError(
            "the token response has no access_token", platform_code="invalid_response"
        )
    # The lifetime is counted on the gateway's clock (authlib's OAuth2Token counts expires_in
    # from the real one, which a test's shifted clock would see as long expired); an absolute
    # expires_at, which a few platforms send instead, is taken as it is.
    now = clock.now()
    expires_at = _expiry(now, payload.get("expires_in"), None)
    if expires_at is None and _number(payload.get("expires_at")):
        expires_at = datetime.fromtimestamp(float(payload["expires_at"]), UTC)
    if expires_at is None:
        expires_at = _expiry(now, None, spec.default_access_token_lifetime)
    refresh_in = payload.get("refresh_expires_in") or payload.get("refresh_token_expires_in")
    refresh_expires_at = _expiry(now, refresh_in, spec.default_refresh_token_lifetime)
    raw_scope = payload.get("scope")
    scopes = None
    if isinstance(raw_scope, str):
        # Platforms separate granted scopes with spaces or commas, whatever they asked with.
        scopes = tuple(s for s in re.split(r"[,\s]+", raw_scope) if s)
    secret_fields = {"access_token", "refresh_token", "id_token"}
    known = {"expires_in", "refresh_expires_in", "refresh_token_expires_in", "scope", "token_type"}
    return TokenSet(
        access_token=payload["access_token"],
        refresh_token=payload.get("refresh_token") or None,
        expires_at=expires_at,
        refresh_expires_at=refresh_expires_at,
        scopes=scopes,
        token_type=str(payload.get("token_type") or "Bearer"),
        extra={k: v for k, v in payload.items() if k not in secret_fields | known},
    )


def _number(value: Any) -> bool:
    try:
        return value is not None and float(value) > 0
    except (TypeError, ValueError):
        return False


def _expiry(now: datetime, seconds: Any, fallback: timedelta | None) -> datetime | None:
    if _number(seconds):
        return now + timedelta(seconds=float(seconds))
    return now + fallback if fallback else None


def _token_error(status: int, payload: Mapping[str, Any], retry_after: str | None) -> PlatformError:
    raw = payload.get("error")
    if isinstance(raw, Mapping):  # an API-style error object rather than RFC 6749's string
        error = str(raw.get("code") or raw.get("type") or f"http_{status}")
        description = str(raw.get("message") or error)
    else:
        error = str(raw or f"http_{status}")
        description = str(payload.get("error_description") or payload.get("message") or error)
    if status == 429:
        return RateLimited(
            description,
            retry_after=parse_retry_after(retry_after),
            platform_code=error,
            http_status=status,
        )
    if status >= 500:
        return Transient(description, platform_code=error, http_status=status)
    if error in REAUTH_ERRORS:
        return InvalidGrant(description, platform_code=error, http_status=status)
    if error in CONFIG_ERRORS:
        return PermissionDenied(
            f"the platform refused the app's credentials: {description}",
            platform_code=error,
            http_status=status,
        )
    return TokenEndpointError(description, platform_code=error, http_status=status)

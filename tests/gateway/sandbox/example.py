"""An example emulator built on gateway.sandbox, the way a platform plugin builds its own."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any

from aiohttp import web

from gateway.sandbox import (
    ControlInputError,
    HostRoutes,
    InvalidGrant,
    IssuedToken,
    Sandbox,
    TokenStatus,
    redirect_with,
    rfc3339,
)

REDIRECT_URI = "https://app.test/callback"
CLIENTS = {
    "client-1": {
        # Markup in the name: the consent page must escape it.
        "name": 'Acme <b>Publisher</b> & "Co"',
        "secret": "secret-1",
        "redirect_uris": {REDIRECT_URI},
    }
}
WEBHOOK_EVENTS = {"post.published", "token.revoked"}


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


class ExampleSandbox(Sandbox):
    """A platform with OAuth + PKCE, a profile endpoint, posts, a rate limit and webhooks."""

    platform = "example"
    hosts = ("api.example.test", "www.example.test")
    access_ttl = 3600.0
    refresh_ttl = 30 * 86400.0
    rotate_refresh = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.me_limit = self.rate_limit(5, 60)

    def reset_state(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.accounts = [{"id": "page_1", "name": "Example Page"}]

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "posts": self.posts, "accounts": self.accounts}

    def setup_routes(self, routes: HostRoutes) -> None:
        routes.add("www.example.test", "GET", "/oauth/authorize", self.authorize)
        routes.add("www.example.test", "POST", "/oauth/authorize", self.authorize)
        routes.add("www.example.test", "GET", "/posts/{post_id}", self.view_post)
        routes.add("api.example.test", "POST", "/oauth/token", self.token)
        routes.add("api.example.test", "POST", "/oauth/revoke", self.revoke)
        routes.add("api.example.test", "GET", "/v1/me", self.me)
        routes.add("api.example.test", "POST", "/v1/posts", self.create_post)

    def build_webhook(self, event: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        if event not in WEBHOOK_EVENTS:
            raise ControlInputError("event", f"the example platform sends {sorted(WEBHOOK_EVENTS)}")
        body = json.dumps({"event": event, "payload": payload, "sentAt": self.clock.timestamp()})
        signature = hmac.new(self.webhook_secret.encode(), body.encode(), hashlib.sha256)
        return body.encode(), {
            "Content-Type": "application/json",
            "X-Example-Signature": f"sha256={signature.hexdigest()}",
        }

    async def authorize(self, request: web.Request) -> web.Response:
        query = request.query
        client = CLIENTS.get(query.get("client_id", ""))
        if client is None or query.get("redirect_uri") not in client["redirect_uris"]:
            return _error(400, "invalid_client", "unknown client or redirect_uri")
        scopes = query.get("scope", "").split()

        def allow(request: web.Request) -> str:
            code = self.tokens.issue_code(
                query["client_id"],
                query["redirect_uri"],
                scopes,
                query.get("code_challenge"),
                query.get("code_challenge_method"),
                "user_1",
            )
            return redirect_with(query["redirect_uri"], {"code": code, "state": query.get("state")})

        return await self.consent_page(
            request, app_name=str(client["name"]), scopes=scopes, on_allow=allow
        )

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        client = CLIENTS.get(form.get("client_id", ""))
        if client is None or client["secret"] != form.get("client_secret"):
            return web.json_response({"error": "invalid_client"}, status=401)
        try:
            if form.get("grant_type") == "authorization_code":
                code = self.tokens.redeem_code(
                    form.get("code", ""),
                    form["client_id"],
                    form.get("redirect_uri"),
                    form.get("code_verifier"),
                )
                token = self.tokens.issue(
                    code.subject,
                    code.scopes,
                    access_ttl=self.access_ttl,
                    refresh_ttl=self.refresh_ttl,
                )
            elif form.get("grant_type") == "refresh_token":
                token = self.tokens.refresh(
                    form.get("refresh_token", ""), rotate=self.rotate_refresh
                )
            else:
                return web.json_response({"error": "unsupported_grant_type"}, status=400)
        except InvalidGrant as exc:
            return web.json_response(
                {"error": "invalid_grant", "error_description": exc.message, "reason": exc.reason},
                status=400,
            )
        return web.json_response(
            {
                "access_token": token.access_token,
                "token_type": "bearer",
                "expires_in": token.expires_in,
                "refresh_token": token.refresh_token,
                "refresh_token_expires_in": token.refresh_expires_in,
                "scope": " ".join(token.scopes),
            }
        )

    async def revoke(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.tokens.revoke(str(form.get("token", "")))
        return web.Response(status=200)

    def _authorized(self, request: web.Request) -> IssuedToken | web.Response:
        status, token = self.check_bearer(request)
        if token is None or status is not TokenStatus.ACTIVE:
            return _error(401, f"token_{status}", f"access token is {status}")
        return token

    async def me(self, request: web.Request) -> web.Response:
        token = self._authorized(request)
        if isinstance(token, web.Response):
            return token
        allowed, retry_after = self.me_limit.hit(token.access_token)
        if not allowed:
            headers = {"Retry-After": str(math.ceil(retry_after))}
            return _error(429, "rate_limited", "too many calls", headers)
        return web.json_response({"id": token.subject, "scopes": list(token.scopes)})

    async def create_post(self, request: web.Request) -> web.Response:
        token = self._authorized(request)
        if isinstance(token, web.Response):
            return token
        try:
            payload = await request.json()
        except ValueError:
            return _error(400, "invalid_request", "body must be JSON")
        if not isinstance(payload, dict) or not payload.get("text"):
            return _error(400, "invalid_request", "text is required")
        post = {
            "id": f"post_{len(self.posts) + 1}",
            "author": token.subject,
            "payload": payload,
            "createdAt": rfc3339(self.clock.timestamp()),
        }
        self.posts.append(post)
        url = f"{self.root_url(request)}/www.example.test/posts/{post['id']}"
        return web.json_response({"id": post["id"], "url": url}, status=201)

    async def view_post(self, request: web.Request) -> web.Response:
        for post in self.posts:
            if post["id"] == request.match_info["post_id"]:
                return web.json_response(post)
        return _error(404, "not_found", "no such post")

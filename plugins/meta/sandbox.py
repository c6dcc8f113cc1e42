"""The Meta emulator: Facebook Login, the Graph API for Pages and Instagram, signed webhooks.

Served under the real hosts (``graph.facebook.com``, ``graph-video.facebook.com``,
``www.facebook.com``), with or without a ``vNN.0`` version prefix, so a client of the real Graph
API works against it by changing only its base URL. Tokens have Meta's lifetimes (short-lived
user token 1 h, long-lived 60 days, Page tokens from a long-lived token never expire), errors
come in Graph's envelope, every call reports its usage in ``X-App-Usage`` (user tokens) or
``X-Business-Use-Case-Usage`` (Page tokens) and is throttled with code 4 / 80001 / 80002 at 100 %.
The platform's facts are written out here, not read from the connector, so a connector that
disagrees with the platform fails its tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass
from html import escape
from typing import Any

from aiohttp import web

from gateway import sandbox

from .sandbox_api import GraphApi
from .sandbox_content import ContentStore
from .sandbox_graph import (
    APP_ID,
    APP_NAME,
    APP_SECRET,
    GraphError,
    app_usage,
    buc_usage,
    envelope,
    usage_percent,
)

# The verify token set in the sandbox app's dashboard (the connector's sandbox default).
VERIFY_TOKEN = "meta-sandbox-verify-token"
SHORT_TTL = 3600.0
LONG_TTL = 5_184_000.0
DEFAULT_USER = "user-1"
PERMISSIONS = (
    "public_profile",
    "email",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_posts",
    "pages_manage_engagement",
    "read_insights",
    "publish_video",
    "business_management",
    "instagram_basic",
    "instagram_content_publish",
    "instagram_manage_insights",
    "instagram_manage_comments",
    "instagram_manage_contents",
)
GRAPH, VIDEO, WWW = "graph.facebook.com", "graph-video.facebook.com", "www.facebook.com"
_VERSION = re.compile(r"^v\d+\.\d+$")
_LOGIN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_FAULTS = {
    400: (100, "(#100) Invalid parameter", None, False),
    401: (190, "Invalid OAuth access token - Cannot parse access token", None, False),
    403: (200, "(#200) Permissions error", None, False),
    404: (100, "(#100) Object does not exist", 33, False),
    429: (4, "(#4) Application request limit reached", None, True),
    500: (1, "An unknown error has occurred.", None, True),
    503: (2, "Service temporarily unavailable", None, True),
}


def _number(text: str, salt: str) -> str:
    return str(int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:12], 16))


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    name: str
    owner: str
    ig_id: str | None
    ig_username: str | None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a Graph request comes from: the token, its user, and its Page for a Page token."""

    token: sandbox.IssuedToken

    @property
    def user(self) -> str:
        return self.token.subject

    @property
    def page(self) -> str | None:
        return self.token.extra.get("page")

    def require(self, *permissions: str) -> None:
        for permission in permissions:
            if permission not in self.token.scopes:
                code = 10 if permission.startswith("instagram") else 200
                raise GraphError(
                    code,
                    f"(#{code}) This action requires the {permission} permission",
                    status=403,
                )


class MetaSandbox(sandbox.Sandbox):
    """Facebook Login and the Graph API (Pages, Instagram content publishing, insights)."""

    platform = "meta"
    hosts = (GRAPH, VIDEO, WWW)

    def __init__(self, *, calls_per_hour: int = 4800, publish_quota: int = 50, **kwargs: Any):
        # Meta signs webhooks with the app secret.
        kwargs.setdefault("webhook_secret", APP_SECRET)
        self.publish_quota = publish_quota
        super().__init__(**kwargs)
        self.tokens = sandbox.TokenStore(self.clock, access_prefix="EAA")
        self.usage = self.rate_limit(calls_per_hour, 3600.0)

    def reset_state(self) -> None:
        self.users: dict[str, str] = {}
        self.pages: dict[str, Page] = {}
        self.page_tokens: dict[tuple[str, str], str] = {}
        self.content = ContentStore()
        self.publishes: dict[str, list[float]] = {}
        self.add_user(DEFAULT_USER)

    # -- people and their Pages -------------------------------------------------------------

    def add_user(self, user: str) -> str:
        """The user's id; the first login creates two Pages, the first linked to Instagram."""
        if user not in self.users:
            self.users[user] = re.sub(r"[-_.]+", " ", user).title()
            for n in (1, 2):
                page_id = _number(f"{user}:{n}", "page")
                ig_id = _number(f"{user}:{n}", "ig") if n == 1 else None
                self.pages[page_id] = Page(
                    page_id,
                    f"{self.users[user]} Page {n}",
                    user,
                    ig_id,
                    f"{user.replace('-', '_')}_ig" if ig_id else None,
                )
        return self.user_id(user)

    @staticmethod
    def user_id(user: str) -> str:
        return _number(user, "user")

    def pages_of(self, user: str) -> list[Page]:
        return [page for page in self.pages.values() if page.owner == user]

    def ig_owner(self, ig_id: str) -> Page | None:
        return next((page for page in self.pages.values() if page.ig_id == ig_id), None)

    def page_token(self, user_token: sandbox.IssuedToken, page: Page) -> str:
        """The Page token a user token yields: non-expiring when the user token is long-lived."""
        key = (user_token.access_token, page.id)
        if key not in self.page_tokens:
            long_lived = (user_token.expires_in or 0) > 86400
            issued = self.tokens.issue(
                user_token.subject,
                user_token.scopes,
                access_ttl=None if long_lived else SHORT_TTL,
                extra={"type": "PAGE", "page": page.id},
            )
            self.page_tokens[key] = issued.access_token
        return self.page_tokens[key]

    def snapshot(self) -> dict[str, Any]:
        accounts = []
        for page in self.pages.values():
            accounts.append({"kind": "page", "id": page.id, "name": page.name, "owner": page.owner})
            if page.ig_id:
                accounts.append(
                    {
                        "kind": "instagram",
                        "id": page.ig_id,
                        "name": page.ig_username,
                        "owner": page.owner,
                        "pageId": page.id,
                    }
                )
        return {
            **super().snapshot(),
            "accounts": accounts,
            "users": [
                {"login": u, "id": self.user_id(u), "name": n} for u, n in self.users.items()
            ],
            "posts": self.content.snapshot(self.clock.timestamp()),
            "containers": [
                {
                    "id": c.id,
                    "igUserId": c.ig_user,
                    "mediaType": c.media_type,
                    "statusCode": c.status_code(self.clock.timestamp()),
                }
                for c in self.content.containers.values()
            ],
        }

    def fault_body(self, status: int) -> Any:
        code, message, subcode, transient = _FAULTS.get(
            status, (1 if status >= 500 else 100, f"sandbox fault: HTTP {status}", None, False)
        )
        return envelope(code, message, subcode=subcode, is_transient=transient)

    # -- routes -------------------------------------------------------------------------------

    def setup_routes(self, routes: sandbox.HostRoutes) -> None:
        api = GraphApi(self)
        for method in ("GET", "POST"):
            routes.add(WWW, method, "/dialog/oauth", self.dialog)
            routes.add(WWW, method, "/{version}/dialog/oauth", self.dialog)
        for host in (GRAPH, VIDEO):
            for method in ("GET", "POST", "DELETE"):
                routes.add(host, method, "/{path:.*}", api.dispatch)

    # -- the login dialog ---------------------------------------------------------------------

    async def dialog(self, request: web.Request) -> web.Response:
        query = request.query
        version = request.match_info.get("version")
        if version is not None and not _VERSION.match(version):
            return _page("Unknown API version")
        if query.get("client_id") != APP_ID:
            return _page("Invalid App ID: the app does not exist")
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return _page("URL blocked: redirect_uri must be an absolute http(s) URL")
        requested = [s.strip() for s in query.get("scope", "public_profile").split(",") if s]
        unknown = [s for s in requested if s not in PERMISSIONS]
        if unknown:
            return _page(f"Invalid Scopes: {', '.join(unknown)}")
        if query.get("response_type", "code") != "code":
            return _page("This sandbox serves the server-side code flow only")

        async def allow(request: web.Request) -> str:
            user = query.get("login_as") or DEFAULT_USER
            if not _LOGIN.match(user):
                raise web.HTTPBadRequest(text="login_as is not a valid user name")
            # A testing knob: the permissions the user unticks in the dialog.
            declined = set(query.get("declined", "").split(","))
            granted = [s for s in requested if s not in declined]
            self.add_user(user)
            code = self.tokens.issue_code(APP_ID, redirect_uri, granted, None, None, user)
            return sandbox.redirect_with(redirect_uri, {"code": code, "state": query.get("state")})

        return await self.consent_page(request, app_name=APP_NAME, scopes=requested, on_allow=allow)

    def deny_params(self, request: web.Request) -> dict[str, str | None]:
        return {
            "error": "access_denied",
            "error_code": "200",
            "error_description": "Permissions error",
            "error_reason": "user_denied",
            "state": request.query.get("state"),
        }

    # -- tokens -------------------------------------------------------------------------------

    async def caller(self, request: web.Request, params: sandbox.RequestParams) -> Caller:
        """The request's live token, else 104 or 190.

        Graph reads it from ``Authorization: Bearer …`` or ``OAuth …``, or from ``access_token``
        in the query or the body (form or JSON), as Meta's SDKs send it.
        """
        token = sandbox.bearer_token(
            request, schemes=("bearer", "oauth"), param="access_token", params=params
        )
        if not token:
            raise GraphError(
                104, "An access token is required to request this resource.", status=400
            )
        status, issued = self.tokens.check(token)
        if issued is None:
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        if status is sandbox.TokenStatus.EXPIRED:
            raise GraphError(
                190,
                "Error validating access token: Session has expired.",
                subcode=463,
            )
        if status is sandbox.TokenStatus.REVOKED:
            raise GraphError(
                190,
                f"Error validating access token: The user has not authorized application {APP_ID}.",
                subcode=458,
            )
        proof = params.get("appsecret_proof")
        # Optional for the sandbox app (no "Require App Secret"), but checked when sent, as the
        # SDKs do whenever they are given the app secret.
        if proof is not None and not hmac.compare_digest(proof, _proof(token)):
            raise GraphError(
                100,
                "Invalid appsecret_proof provided in the API argument",
                type_="GraphMethodException",
            )
        return Caller(issued)

    def meter(self, caller: Caller, object_id: str | None, kind: str) -> dict[str, str]:
        """Count the call and answer its usage header; at 100 % the call is refused."""
        page_token = caller.page is not None
        key = f"{kind}:{object_id or caller.page}" if page_token else "app"
        decision = self.usage.hit(key)
        percent = usage_percent(self.usage.used(key), self.usage.limit)
        if page_token:
            regain = 0 if decision.allowed else max(1, math.ceil(decision.retry_after / 60))
            headers = {
                "X-Business-Use-Case-Usage": buc_usage(
                    object_id or caller.page or "",
                    kind,
                    100 if not decision.allowed else percent,
                    regain,
                )
            }
        else:
            headers = {"X-App-Usage": app_usage(100 if not decision.allowed else percent)}
        if not decision.allowed:
            if not page_token:
                code, message = 4, "(#4) Application request limit reached"
            elif kind == "instagram":
                code, message = (
                    80002,
                    "(#80002) There have been too many calls to this Instagram account. "
                    "Wait a bit and try again.",
                )
            else:
                code, message = (
                    80001,
                    "(#80001) There have been too many calls to this Page account. "
                    "Wait a bit and try again.",
                )
            raise GraphError(code, message, is_transient=True, headers=headers)
        return headers

    def token_endpoint(self, params: sandbox.RequestParams) -> web.Response:
        if params.get("client_id") != APP_ID:
            raise GraphError(101, "Error validating application. Invalid application ID.")
        if not hmac.compare_digest(params.get("client_secret", "").encode(), APP_SECRET.encode()):
            raise GraphError(1, "Error validating client secret.")
        grant = params.get("grant_type")
        if grant == "fb_exchange_token":
            try:
                token = self.tokens.exchange(
                    params.get("fb_exchange_token", ""), access_ttl=LONG_TTL
                )
            except sandbox.InvalidGrant as exc:
                subcode = 463 if exc.reason == "expired" else None
                raise GraphError(
                    190, f"Error validating access token: {exc.message}", subcode=subcode
                ) from exc
        elif grant == "client_credentials":
            return web.json_response(
                {"access_token": f"{APP_ID}|{APP_SECRET}", "token_type": "bearer"}
            )
        else:
            token = self._redeem(params)
        return web.json_response(
            {
                "access_token": token.access_token,
                "token_type": "bearer",
                "expires_in": token.expires_in,
            }
        )

    def _redeem(self, params: sandbox.RequestParams) -> sandbox.IssuedToken:
        code = params.get("code")
        if not code:
            raise GraphError(100, "Missing authorization code")
        try:
            grant = self.tokens.redeem_code(code, APP_ID, params.get("redirect_uri"), None)
        except sandbox.InvalidGrant as exc:
            subcode = {
                "used": 36009,
                "expired": 36007,
                "redirect_uri_mismatch": 36008,
            }.get(exc.reason)
            messages = {
                36009: "This authorization code has been used.",
                36007: "This authorization code has expired.",
                36008: "Error validating verification code. Please make sure your "
                "redirect_uri is identical to the one you used in the OAuth dialog request",
            }
            raise GraphError(
                100,
                messages.get(subcode or 0, "Invalid verification code format."),
                subcode=subcode,
            ) from exc
        return self.tokens.issue(
            grant.subject, grant.scopes, access_ttl=SHORT_TTL, extra={"type": "USER"}
        )

    # -- webhooks -----------------------------------------------------------------------------

    def build_handshake(self, payload: dict[str, Any]) -> dict[str, str]:
        """Meta's verification GET: ``hub.mode``, ``hub.verify_token``, ``hub.challenge``."""
        return {
            "hub.mode": "subscribe",
            "hub.verify_token": str(payload.get("verifyToken") or VERIFY_TOKEN),
            "hub.challenge": str(secrets.randbelow(9 * 10**9) + 10**9),
        }

    def build_webhook(self, event: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """``feed`` (a Page post changed), ``comments`` (Instagram), ``permissions`` (revoked)."""
        user = str(payload.get("user") or DEFAULT_USER)
        self.add_user(user)
        first = self.pages_of(user)[0]
        value = payload.get("value") if isinstance(payload.get("value"), dict) else {}
        now = int(self.clock.timestamp())
        if event == "feed":
            obj, entry_id, field = "page", str(payload.get("entryId") or first.id), "feed"
            value = {"item": "status", "verb": "edited", "created_time": now, **value}
        elif event == "comments":
            obj, entry_id, field = (
                "instagram",
                str(payload.get("entryId") or first.ig_id),
                "comments",
            )
            value = {"id": "1" + _number(str(now), "comment"), "text": "Nice!", **value}
        elif event == "permissions":
            obj, entry_id = "permissions", str(payload.get("entryId") or self.user_id(user))
            field = str(payload.get("permission") or "pages_manage_posts")
            value = {"verb": "revoked", "target_ids": [], **value}
        else:
            raise sandbox.ControlInputError("event", "use feed, comments or permissions")
        body = {
            "object": obj,
            "entry": [{"id": entry_id, "time": now, "changes": [{"field": field, "value": value}]}],
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        secret = self.webhook_secret.encode()
        return raw, {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest(),
            "X-Hub-Signature": "sha1=" + hmac.new(secret, raw, hashlib.sha1).hexdigest(),
        }


def _proof(token: str) -> str:
    """``appsecret_proof``: HMAC-SHA256 of the access token, keyed with the app secret."""
    return hmac.new(APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()


def _page(message: str) -> web.Response:
    html = (
        "<!doctype html><title>Facebook</title><h1>Sorry, something went wrong.</h1>"
        f"<p>{escape(message)}</p>"
    )
    return web.Response(status=400, text=html, content_type="text/html")

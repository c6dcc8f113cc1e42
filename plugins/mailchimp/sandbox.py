"""The Mailchimp Marketing API 3.0 emulator, under its real hosts, for Mailchimp's own client."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from typing import Any, ClassVar
from urllib.parse import urlencode

from aiohttp import web

from gateway import sandbox

from .sandbox_audiences import BATCH_HOST, AudiencesApi, rfc3339
from .sandbox_campaigns import CampaignsApi
from .sandbox_state import ACCOUNTS, Account, Audience, Batch, Campaign, McError, seed_audiences

LOGIN = "login.mailchimp.com"
API = "{dc}.api.mailchimp.com"
CLIENT_ID = "mailchimp-sandbox-client"
CLIENT_SECRET = "mailchimp-sandbox-secret"
MAX_CONNECTIONS = 10
WEBHOOK_EVENTS = ("subscribe", "unsubscribe", "profile", "upemail", "cleaned", "campaign")
_DC = re.compile(r"^[a-z]{2}\d{1,3}$")
_TITLES = {
    400: "Bad Request",
    401: "API Key Invalid",
    403: "Forbidden",
    404: "Resource Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class MailchimpSandbox(sandbox.Sandbox):
    """``{dc}.api.mailchimp.com/3.0``, ``login.mailchimp.com/oauth2`` and the batch bucket.

    Three fixed accounts (``sandbox_state.ACCOUNTS``): ``acme`` (us6, paid), ``freebie`` (us19,
    free plan: no scheduling) and ``disabled`` (403 User Disabled). API keys go as HTTP Basic
    passwords, OAuth tokens (which never expire) as ``Bearer``; a credential used at another
    data centre's host is 403 Wrong Datacenter; more than 10 requests in flight per credential
    get 429; errors are ``application/problem+json``.
    """

    platform = "mailchimp"
    hosts = (API, LOGIN, BATCH_HOST)
    max_concurrent_requests: ClassVar[int | None] = MAX_CONNECTIONS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.accounts = ACCOUNTS
        self.by_key = {a.api_key: a for a in ACCOUNTS}
        self.by_id = {a.id: a for a in ACCOUNTS}
        self.campaigns_api = CampaignsApi(self)
        self.audiences_api = AudiencesApi(self)

    def reset_state(self) -> None:
        self.audiences: dict[str, Audience] = seed_audiences(self.clock.timestamp())
        self.campaigns: dict[str, Campaign] = {}
        self.batches: dict[str, Batch] = {}

    # -- what the toolkit asks of a platform -------------------------------------------------

    def fault_body(self, status: int) -> Any:
        return McError(
            status, _TITLES.get(status, "Error"), f"sandbox fault: HTTP {status}"
        ).document()

    def too_many_concurrent(self, request: web.Request, limit: int) -> web.StreamResponse:
        return McError(
            429,
            "Too Many Requests",
            f"You have exceeded the limit of {limit} simultaneous connections.",
        ).response()

    def snapshot(self) -> dict[str, Any]:
        campaigns = []
        for campaign in self.campaigns.values():
            campaign.advance(self.clock.timestamp(), self.audiences.get(campaign.list_id))
            campaigns.append(
                {
                    **self.campaigns_api.as_api(campaign),
                    "html": campaign.html,
                    "template": campaign.template,
                    "tests": campaign.tests,
                }
            )
        accounts = [
            {**a.as_api(rfc3339), "account": self.by_id[a.account_id].login}
            for a in self.audiences.values()
        ]
        members = {
            a.id: [m.as_api(a.id, rfc3339) for m in a.members.values()]
            for a in self.audiences.values()
        }
        webhooks = [h for a in self.audiences.values() for h in a.webhooks.values()]
        batches = [self.audiences_api.batch_json(b) for b in self.batches.values()]
        peaks = dict(self.concurrency.peak) if self.concurrency else {}
        return {
            **super().snapshot(),
            "posts": campaigns,
            "accounts": accounts,
            "members": members,
            "webhooks": webhooks,
            "batches": batches,
            "peakConnections": peaks,
        }

    def build_handshake(self, payload: dict[str, Any]) -> dict[str, str]:
        """Mailchimp validates a webhook URL with a bare GET (also sent on creation)."""
        return {}

    def build_webhook(self, event: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """An audience webhook delivery: form-encoded, PHP-style keys, unsigned."""
        if event not in WEBHOOK_EVENTS:
            raise sandbox.ControlInputError("event", f"must be one of {', '.join(WEBHOOK_EVENTS)}")
        audience = next(iter(self.audiences.values()))
        email = str(payload.get("email", "jane@example.com"))
        data: dict[str, Any] = {"list_id": payload.get("list_id", audience.id)}
        if event == "campaign":
            data.update(id="4f3e2d1c0b", subject="Spring news", status="sent", reason="")
        else:
            data.update(
                id="8a25ff1d98",
                email=email,
                email_type="html",
                merges={"EMAIL": email, "FNAME": "Jane", "LNAME": "Doe"},
                ip_opt="10.20.10.30",
            )
        if event in ("unsubscribe", "cleaned"):
            data.update(action="unsub", reason="manual" if event == "unsubscribe" else "hard")
            data["campaign_id"] = "4f3e2d1c0b"
        if event == "upemail":
            data.update(new_id="51aa6d9bcf", new_email="jane.new@example.com", old_email=email)
            data.pop("email", None)
        data.update(payload.get("data") or {})
        fired = self.clock.now().strftime("%Y-%m-%d %H:%M:%S")
        fields = [("type", event), ("fired_at", str(payload.get("fired_at", fired)))]
        fields += _php_fields("data", data)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "MailChimp",
        }
        return urlencode(fields).encode(), headers

    # -- routes ------------------------------------------------------------------------------

    def setup_routes(self, routes: sandbox.HostRoutes) -> None:
        routes.add(LOGIN, "GET", "/oauth2/authorize", self.authorize)
        routes.add(LOGIN, "POST", "/oauth2/authorize", self.authorize)
        routes.add(LOGIN, "POST", "/oauth2/token", self.token)
        routes.add(LOGIN, "GET", "/oauth2/metadata", self.metadata)
        routes.add(
            BATCH_HOST, "GET", "/{batch_id}-response.tar.gz", self.audiences_api.batch_results
        )
        campaigns, audiences = self.campaigns_api, self.audiences_api
        api = [
            ("GET", "/", self.root),
            ("GET", "/ping", self.ping),
            ("GET", "/lists", audiences.lists),
            ("POST", "/lists", audiences.create_list),
            ("GET", "/lists/{list_id}", audiences.get_list),
            ("POST", "/lists/{list_id}", audiences.batch_members),
            ("GET", "/lists/{list_id}/members", audiences.members),
            ("POST", "/lists/{list_id}/members", audiences.add_member),
            ("GET", "/lists/{list_id}/members/{subscriber_hash}", audiences.member),
            ("PUT", "/lists/{list_id}/members/{subscriber_hash}", audiences.member_write),
            ("PATCH", "/lists/{list_id}/members/{subscriber_hash}", audiences.member_write),
            ("DELETE", "/lists/{list_id}/members/{subscriber_hash}", audiences.member_write),
            ("GET", "/lists/{list_id}/members/{subscriber_hash}/tags", audiences.member_tags),
            ("POST", "/lists/{list_id}/members/{subscriber_hash}/tags", audiences.member_tags),
            (
                "POST",
                "/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent",
                audiences.delete_permanent,
            ),
            ("GET", "/lists/{list_id}/webhooks", audiences.webhooks),
            ("POST", "/lists/{list_id}/webhooks", audiences.create_webhook),
            ("GET", "/lists/{list_id}/webhooks/{webhook_id}", audiences.webhook),
            ("DELETE", "/lists/{list_id}/webhooks/{webhook_id}", audiences.webhook),
            ("GET", "/batches", audiences.batches),
            ("POST", "/batches", audiences.start_batch),
            ("GET", "/batches/{batch_id}", audiences.batch),
            ("DELETE", "/batches/{batch_id}", audiences.batch),
            ("GET", "/campaigns", campaigns.listing),
            ("POST", "/campaigns", campaigns.create),
            ("GET", "/campaigns/{id}", campaigns.get),
            ("PATCH", "/campaigns/{id}", campaigns.update),
            ("DELETE", "/campaigns/{id}", campaigns.remove),
            ("GET", "/campaigns/{id}/content", campaigns.content),
            ("PUT", "/campaigns/{id}/content", campaigns.content),
            ("GET", "/campaigns/{id}/send-checklist", campaigns.send_checklist),
            ("POST", "/campaigns/{id}/actions/send", campaigns.send),
            ("POST", "/campaigns/{id}/actions/schedule", campaigns.schedule),
            ("POST", "/campaigns/{id}/actions/unschedule", campaigns.unschedule),
            ("POST", "/campaigns/{id}/actions/test", campaigns.test),
            ("POST", "/campaigns/{id}/actions/replicate", campaigns.replicate),
            ("GET", "/reports", campaigns.reports),
            ("GET", "/reports/{id}", campaigns.get_report),
        ]
        for method, path, handler in api:
            routes.add(API, method, "/3.0" + path, self.api(handler))

    def api(self, handler):
        """Authenticate (key or token, data centre, disabled user), then run ``handler``."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            dc = request.match_info["dc"]
            try:
                if not _DC.match(dc):
                    raise McError(404, "Resource Not Found", f"there is no data centre {dc}")
                return await handler(request, self.authenticate(request, dc))
            except McError as exc:
                return exc.response(dc)

        return wrapped

    def authenticate(self, request: web.Request, dc: str) -> Account:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        account = None
        if not scheme:
            raise McError(401, "API Key Missing", "Your request did not include an API key.")
        if scheme == "basic":
            try:
                pair = base64.b64decode(credential, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                pair = ""
            account = self.by_key.get(pair.partition(":")[2])
        elif scheme in ("bearer", "oauth"):
            token = self.tokens.validate(credential)
            account = self.by_id.get(token.subject) if token else None
        if account is None:
            raise McError(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        if account.dc != dc:
            raise McError(
                403,
                "Wrong Datacenter",
                f"The API key provided is linked to the datacenter '{account.dc}'. Your request "
                f"was made to '{dc}'. Please use https://{account.dc}.api.mailchimp.com/3.0/.",
            )
        if account.disabled:
            raise McError(403, "User Disabled", "This account has been disabled.")
        return account

    async def body(self, request: web.Request) -> dict[str, Any]:
        """The JSON object sent; Mailchimp's client posts ``null`` for an action without one."""
        raw = await request.read()
        try:
            value = json.loads(raw) if raw.strip() else None
        except ValueError:
            value = "invalid"
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise McError(
                400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
            )
        return value

    async def root(self, request: web.Request, account: Account) -> web.Response:
        return web.json_response(account.root())

    async def ping(self, request: web.Request, account: Account) -> web.Response:
        return web.json_response({"health_status": "Everything's Chimpy!"})

    # -- OAuth 2.0 (no PKCE, no scopes, tokens that never expire) ---------------------------

    async def authorize(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("client_id") != CLIENT_ID:
            return web.Response(status=400, text="Invalid client_id")
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return web.Response(status=400, text="Invalid redirect_uri")
        if query.get("response_type") != "code":
            return web.Response(status=400, text="response_type must be code")

        async def allow(request: web.Request) -> str:
            form = await request.post() if request.method == "POST" else {}
            login = str(form.get("login_as") or query.get("login_as") or ACCOUNTS[0].login)
            account = next((a for a in ACCOUNTS if a.login == login), None)
            if account is None:
                raise web.HTTPBadRequest(text=f"no sandbox account {login}")
            code = self.tokens.issue_code(CLIENT_ID, redirect_uri, (), None, None, account.id)
            return sandbox.redirect_with(redirect_uri, {"code": code, "state": query.get("state")})

        return await self.consent_page(
            request, app_name="Mailchimp sandbox app", scopes=(), on_allow=allow
        )

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        secret = str(form.get("client_secret", ""))
        if form.get("client_id") != CLIENT_ID or not hmac.compare_digest(
            secret.encode(), CLIENT_SECRET.encode()
        ):
            return _oauth_error(401, "invalid_client", "Invalid client credentials")
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "Only authorization_code")
        try:
            grant = self.tokens.redeem_code(
                str(form.get("code", "")), CLIENT_ID, form.get("redirect_uri"), None
            )
        except sandbox.InvalidGrant as exc:
            return _oauth_error(400, "invalid_grant", exc.message)
        token = self.tokens.issue(grant.subject, (), access_ttl=None)
        # Mailchimp's tokens never expire: expires_in 0, no refresh token, no scope.
        return web.json_response(
            {"access_token": token.access_token, "expires_in": 0, "scope": None}
        )

    async def metadata(self, request: web.Request) -> web.Response:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        token = self.tokens.validate(credential.strip()) if scheme == "OAuth" else None
        account = self.by_id.get(token.subject) if token else None
        if account is None:
            return _oauth_error(401, "invalid_token", "Invalid or missing OAuth token")
        return web.json_response(
            {
                "dc": account.dc,
                "role": "owner",
                "accountname": account.name,
                "user_id": int(account.id[:6], 16),
                "login": {
                    "email": account.email,
                    "avatar": None,
                    "login_id": int(account.id[6:12], 16),
                    "login_name": account.login,
                    "login_email": account.email,
                },
                "login_url": "https://login.mailchimp.com",
                "api_endpoint": f"https://{account.dc}.api.mailchimp.com",
            }
        )


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _php_fields(prefix: str, value: Any) -> list[tuple[str, str]]:
    """``{"merges": {"FNAME": "Jane"}}`` under ``data`` → ``data[merges][FNAME]=Jane``."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _php_fields(f"{prefix}[{k}]", v)]
    return [(prefix, "" if value is None else str(value))]

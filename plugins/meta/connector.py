"""The Meta connector: Facebook Login, Pages and their Instagram accounts, publish, analytics."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from gateway import (
    AccountInfo,
    AccountRef,
    Analytics,
    Authorization,
    Capabilities,
    Connector,
    Credentials,
    FieldProblem,
    HealthResult,
    Limits,
    LimitsByKind,
    NeedsReauth,
    NotFound,
    OAuth2Spec,
    PermissionDenied,
    PlatformError,
    PollPolicy,
    PostKind,
    PublishRequest,
    PublishResult,
    RateLimit,
    RateLimitScope,
    RefreshKind,
    RefreshPolicy,
    SettingSpec,
    TokenSet,
    TokenSource,
    UnsupportedCapability,
    clock,
)

from . import checks, facebook, insights, instagram
from .const import (
    CAPTION_MAX,
    CAROUSEL_MAX,
    DEFAULT_VERSION,
    FB_MESSAGE_MAX,
    FB_PHOTOS_MAX,
    GRAPH,
    HASHTAGS_MAX,
    HOSTS,
    IG_KIND,
    IG_MEDIA_TYPES,
    MENTIONS_MAX,
    PAGE_KIND,
    REQUIRED_SCOPES,
    SCOPES,
)
from .graph import GraphClient
from .webhooks import MetaWebhooks

WARN_BEFORE_EXPIRY = timedelta(days=10)
OPTIONS = {
    "type": "object",
    "description": "Under options.meta; Instagram only",
    "properties": {
        "mediaType": {"enum": list(checks.MEDIA_TYPES), "description": "default: from the media"},
        "shareToFeed": {"type": "boolean", "description": "reels: also show in the feed"},
        "coverUrl": {"type": "string", "description": "reels: cover image URL"},
        "altText": {"type": "string", "description": "single images: alternative text"},
    },
    "additionalProperties": False,
}


class MetaConnector(MetaWebhooks, Connector):
    """Facebook Pages and the Instagram Business accounts linked to them."""

    platform = "meta"
    display_name = "Meta (Facebook Pages and Instagram)"
    hosts = HOSTS
    # The login dialog and token endpoint without a version prefix use the app's default
    # version; Graph calls use the `api_version` setting.
    auth = OAuth2Spec(
        authorize_url="https://www.facebook.com/dialog/oauth",
        token_url=f"{GRAPH}/oauth/access_token",
        scopes=SCOPES,
        required_scopes=REQUIRED_SCOPES,
        scope_separator=",",
        default_access_token_lifetime=timedelta(hours=1),
    )
    # The long-lived user token (60 days) cannot be renewed without the user: the connection
    # is flagged ten days ahead so that someone reconnects in time. Page tokens derived from
    # it do not expire.
    refresh_policy = RefreshPolicy(kind=RefreshKind.NONE, warn_before_expiry=WARN_BEFORE_EXPIRY)
    capabilities = Capabilities(
        post_kinds={
            PAGE_KIND: (
                PostKind.TEXT,
                PostKind.LINK,
                PostKind.IMAGE,
                PostKind.MULTI_IMAGE,
                PostKind.VIDEO,
            ),
            IG_KIND: (PostKind.IMAGE, PostKind.CAROUSEL, PostKind.REEL, PostKind.STORY),
        },
        delete=True,
        analytics=True,
        webhooks=True,
        # Facebook text, link and multi-photo posts, 10 minutes to 30 days ahead.
        native_scheduling=True,
    )
    # Sizes differ by media type (Instagram: images 8 MB, reels 300 MB, story video 100 MB):
    # one figure cannot say it, and the core cannot see sizes before the media is fetched.
    # Facebook's accepted formats are not in the checked facts: any is let through to Meta.
    limits = LimitsByKind(
        {
            PAGE_KIND: Limits(caption_length=FB_MESSAGE_MAX, media_count_max=FB_PHOTOS_MAX),
            IG_KIND: Limits(
                caption_length=CAPTION_MAX,
                media_count_min=1,
                media_count_max=CAROUSEL_MAX,
                media_types=IG_MEDIA_TYPES,
                hashtags_max=HASHTAGS_MAX,
                mentions_max=MENTIONS_MAX,
            ),
        }
    )
    # Meta's platform limit is about 200 calls per user per hour; the usage headers slow the
    # client down before the real limit (see usage.py).
    rate_limits = (RateLimit(requests=200, per_seconds=3600, scope=RateLimitScope.TOKEN),)
    settings = (
        SettingSpec(
            "webhook_verify_token",
            secret=True,
            help="hub.verify_token set in the App Dashboard for webhook subscriptions",
        ),
    )
    options_schema = OPTIONS
    # Meta's guide: poll about once a minute, for no more than five minutes (video may take
    # longer; an hour is the gateway's patience).
    polling = PollPolicy(
        first=timedelta(seconds=10),
        factor=2.0,
        longest=timedelta(minutes=1),
        timeout=timedelta(hours=1),
    )
    # Insights lag up to 48 hours.
    analytics_delay = timedelta(hours=1)

    @property
    def graph(self) -> GraphClient:
        return GraphClient(self.http, self.context.settings.api_version or DEFAULT_VERSION)

    # -- connecting ---------------------------------------------------------------------------

    async def finish_authorization(self, token: TokenSet) -> Authorization:
        """Long-lived exchange, who the user is, and which permissions were really granted."""
        oauth = self.oauth
        answer = await self.graph.get(
            "oauth/access_token",
            None,
            params={
                "grant_type": "fb_exchange_token",
                "client_id": oauth.client_id,
                "client_secret": oauth.client_secret,
                "fb_exchange_token": token.access_token,
            },
        )
        long_lived = answer.get("access_token")
        if not isinstance(long_lived, str) or not long_lived:
            raise PlatformError(
                "the long-lived exchange gave no token", platform_code="invalid_response"
            )
        expires_in = answer.get("expires_in")
        expires_at = (
            clock.now() + timedelta(seconds=float(expires_in))
            if isinstance(expires_in, int | float) and expires_in > 0
            else None
        )
        me = await self.graph.get("me", long_lived, params={"fields": "id,name"})
        permissions = await self.graph.get("me/permissions", long_lived)
        granted = tuple(
            str(p.get("permission"))
            for p in permissions.get("data") or []
            if isinstance(p, dict) and p.get("status") == "granted"
        )
        missing = [scope for scope in REQUIRED_SCOPES if scope not in granted]
        if missing:
            raise PermissionDenied(
                f"Meta did not grant {', '.join(missing)}; reconnect and allow them",
                missing_scopes=missing,
                platform_code="missing_permissions",
            )
        return Authorization(
            external_user_id=str(me["id"]),
            display_name=str(me.get("name") or me["id"]),
            token=TokenSet(access_token=long_lived, expires_at=expires_at, scopes=granted),
        )

    async def list_accounts(self, credentials: Credentials) -> list[AccountInfo]:
        """Every Page with its Page token, and the Instagram account linked to each."""
        token = _user_token(credentials)
        accounts: list[AccountInfo] = []
        params = {"fields": "id,name,access_token,tasks,instagram_business_account", "limit": "100"}
        while True:
            answer = await self.graph.get("me/accounts", token, params=params)
            for page in answer.get("data") or []:
                accounts += await self._page_accounts(page, token)
            paging = answer.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return accounts
            params = {**params, "after": after}

    async def _page_accounts(self, page: dict[str, Any], token: str | TokenSource):
        page_id, page_token = str(page["id"]), page.get("access_token")
        found = [
            AccountInfo(
                kind=PAGE_KIND,
                external_id=page_id,
                name=str(page.get("name") or page_id),
                metadata={"tasks": page.get("tasks") or []},
                token=page_token,
            )
        ]
        linked = page.get("instagram_business_account")
        if isinstance(linked, dict) and linked.get("id"):
            ig_id = str(linked["id"])
            profile = await self.graph.get(
                ig_id, token, params={"fields": "id,username,name"}, account=ig_id
            )
            found.append(
                AccountInfo(
                    kind=IG_KIND,
                    external_id=ig_id,
                    name=str(profile.get("username") or profile.get("name") or ig_id),
                    metadata={"pageId": page_id},
                    # Instagram publishing uses the linked Page's token.
                    token=page_token,
                )
            )
        return found

    async def health_check(self, credentials: Credentials) -> HealthResult:
        """``GET /me`` with the user token, and how long the 60-day token has left."""
        me = await self.graph.get("me", _user_token(credentials), params={"fields": "id,name"})
        expires_at = credentials.expires_at
        if expires_at is not None:
            left = expires_at - clock.now()
            if left < WARN_BEFORE_EXPIRY:
                return HealthResult(
                    ok=False,
                    detail=f"the Meta login of {me.get('name')} ends in {left.days} days "
                    f"({expires_at.date().isoformat()}); reconnect before then",
                    error_code="token_expiring",
                )
        return HealthResult(ok=True, detail=f"signed in as {me.get('name')} ({me.get('id')})")

    # -- publishing ---------------------------------------------------------------------------

    def post_kind(self, request: PublishRequest, account: AccountRef) -> PostKind:
        return checks.post_kind(request, account)

    def check(self, request: PublishRequest, account: AccountRef) -> list[FieldProblem]:
        return checks.check(request, account)

    async def publish(
        self,
        request: PublishRequest,
        account: AccountRef,
        credentials: Credentials,
        *,
        idempotency_key: str,
    ) -> PublishResult:
        token = _account_token(account)
        if account.kind == IG_KIND:
            if request.scheduled_at is not None:
                raise UnsupportedCapability("Instagram's API publishes at once, never later")
            return await instagram.publish(self.graph, request, account.external_id, token)
        problem = facebook.schedule_problem(request)
        if problem is not None:
            raise UnsupportedCapability(problem)  # the gateway's own scheduler takes it
        return await facebook.publish(self.graph, request, account.external_id, token)

    async def find_published(
        self,
        request: PublishRequest,
        account: AccountRef,
        credentials: Credentials,
        *,
        idempotency_key: str,
    ) -> PublishResult | None:
        """Meta takes no idempotency key: the post is looked for by its text and shape."""
        token = _account_token(account)
        if account.kind == IG_KIND:
            return await instagram.find_published(self.graph, request, account.external_id, token)
        return await facebook.find_published(self.graph, request, account.external_id, token)

    async def poll(
        self, handle: dict[str, Any], account: AccountRef, credentials: Credentials
    ) -> PublishResult:
        token = _account_token(account)
        if "scheduledPostId" in handle:
            return await facebook.poll_scheduled(self.graph, handle, token)
        return await instagram.poll(self.graph, handle, token)

    async def cancel_scheduled(
        self, remote_id: str, account: AccountRef, credentials: Credentials
    ) -> None:
        """A scheduled Page post is deleted before it goes live; already gone is fine."""
        with contextlib.suppress(NotFound):
            await self.delete(remote_id, account, credentials)

    async def delete(self, remote_id: str, account: AccountRef, credentials: Credentials) -> None:
        """``DELETE /{id}``; Meta's "does not exist" (100/33) is ``NotFound``: already gone."""
        answer = await self.graph.call(
            "DELETE", remote_id, _account_token(account), account=account.external_id
        )
        if answer.get("success") is not True:
            raise PlatformError(
                f"deleting {remote_id} answered without success", platform_code="invalid_response"
            )

    async def fetch_analytics(
        self, remote_id: str, account: AccountRef, credentials: Credentials
    ) -> Analytics:
        return await insights.fetch(self.graph, remote_id, account, _account_token(account))


def _user_token(credentials: Credentials) -> str | TokenSource:
    if credentials.token is not None:
        return credentials.token
    if credentials.access_token is None:
        raise NeedsReauth("the connection has no access token")
    return credentials.access_token.reveal()


def _account_token(account: AccountRef) -> str:
    """The Page token (Pages and their Instagram accounts are published with it)."""
    if account.token is None:
        raise NeedsReauth(f"no Page token for {account.name}; reconnect the account")
    return account.token.reveal()

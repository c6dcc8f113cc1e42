"""The Mailchimp connector: audiences are the accounts, a publish is an email campaign."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import (
    AccountInfo,
    AccountRef,
    Analytics,
    ApiKeySpec,
    Authorization,
    BadRequest,
    Capabilities,
    Connector,
    Credentials,
    Event,
    FieldProblem,
    HealthResult,
    InvalidRequest,
    Limits,
    NotFound,
    OAuth2Spec,
    PlatformError,
    PlatformEvent,
    PollPolicy,
    PostKind,
    PublishRequest,
    PublishResult,
    RefreshKind,
    RefreshPolicy,
    TokenSet,
    UnsupportedCapability,
    WebhookContext,
    WebhookDelivery,
)

from . import checks, content, reports, webhooks
from .api import MailchimpApi, Target, key_target, target_of, token_target
from .const import (
    API_KEY,
    AUDIENCE,
    AUTHORIZE_URL,
    FREE_PLAN,
    HOSTS,
    METADATA_URL,
    SCHEDULE_STEP_MINUTES,
    SUBJECT_MAX,
    TOKEN_URL,
)
from .errors import platform_error

# Campaign statuses: still waiting to go out, going or gone, back to a draft.
WAITING, OUT, DRAFT = ("schedule",), ("sending", "sent"), ("save", "paused")


def round_up_to_quarter(when: datetime) -> datetime:
    """The first quarter hour at or after ``when`` (Mailchimp schedules on :00/:15/:30/:45)."""
    when = when.astimezone(UTC)
    floor = when.replace(
        minute=when.minute - when.minute % SCHEDULE_STEP_MINUTES, second=0, microsecond=0
    )
    return floor if floor == when else floor + timedelta(minutes=SCHEDULE_STEP_MINUTES)


def _tag(idempotency_key: str) -> str:
    return f"[{idempotency_key}]"


class MailchimpConnector(Connector):
    """Connects with an API key (its ``-usN`` suffix is the data centre) or OAuth 2.0 (tokens
    never expire; the metadata endpoint names the data centre). Publishing creates a
    ``regular`` campaign, sets its content and sends it, or schedules it on Mailchimp (quarter
    hours, paid plans). The job id rides in the campaign's internal title, so a retried or
    uncertain publish finds its campaign instead of making a second one.
    """

    platform = "mailchimp"
    display_name = "Mailchimp"
    hosts = HOSTS
    auth = OAuth2Spec(authorize_url=AUTHORIZE_URL, token_url=TOKEN_URL)
    api_key_auth = ApiKeySpec(key_format="<32 hex digits>-<data centre>, e.g. …-us6")
    # Audience events reach client webhooks as `mailchimp.<type>`.
    client_events = tuple(f"mailchimp.{name}" for name in webhooks.EVENTS)
    # Keys and OAuth tokens never expire: nothing to refresh.
    refresh_policy = RefreshPolicy(kind=RefreshKind.NONE)
    capabilities = Capabilities(
        post_kinds={AUDIENCE: (PostKind.EMAIL_CAMPAIGN,)},
        delete=True,
        analytics=True,
        webhooks=True,
        native_scheduling=True,
    )
    limits = Limits(title_length=SUBJECT_MAX, media_count_max=20)
    options_schema = checks.OPTIONS_SCHEMA
    # A campaign being sent is done within minutes; a scheduled one is polled at its send time.
    polling = PollPolicy(
        first=timedelta(minutes=1), longest=timedelta(minutes=10), timeout=timedelta(days=400)
    )
    # Opens and clicks come in over the first day.
    analytics_delay = timedelta(hours=1)
    # Audience webhooks are unsigned: they go to /webhooks/mailchimp/<secret> only.
    webhook_url_secret = True

    def __init__(self, context) -> None:
        super().__init__(context)
        self.api = MailchimpApi(self.http)

    # -- connecting --------------------------------------------------------------------------

    async def verify_api_key(self, api_key: str) -> Authorization:
        """Check the key's shape, then ``/ping`` and ``/`` at its data centre."""
        api_key = api_key.strip()
        if API_KEY.match(api_key) is None:
            raise InvalidRequest(
                "a Mailchimp API key is 32 hex digits, a dash and the data centre "
                "(e.g. …-us6); this one is malformed",
                platform_code="malformed_key",
            )
        target = key_target(api_key)
        await self.api.call(target, "GET", "/ping")
        root = await self.api.call(target, "GET", "/")
        dc = API_KEY.match(api_key)["dc"]
        metadata = {"auth": "apiKey", "dc": dc, "apiEndpoint": f"https://{dc}.api.mailchimp.com"}
        return self._authorization(root, metadata, TokenSet(access_token=api_key))

    async def finish_authorization(self, token: TokenSet) -> Authorization:
        """The metadata endpoint names the data centre; the token never expires."""
        async with self.http.get(
            METADATA_URL,
            headers={"Authorization": f"OAuth {token.access_token}", "Accept": "application/json"},
        ) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            if response.status >= 400 or not isinstance(body, dict):
                raise platform_error(response.status, body)
        endpoint = str(body.get("api_endpoint") or f"https://{body['dc']}.api.mailchimp.com")
        root = await self.api.call(token_target(token.access_token, endpoint), "GET", "/")
        metadata = {"auth": "oauth2", "dc": body.get("dc"), "apiEndpoint": endpoint}
        # Whatever expires_in said (Mailchimp sends 0), the token does not expire.
        lasting = TokenSet(access_token=token.access_token, scopes=(), extra={})
        return self._authorization(root, metadata, lasting)

    def _authorization(self, root: Any, metadata: dict, token: TokenSet) -> Authorization:
        if not isinstance(root, dict) or not root.get("account_id"):
            raise PlatformError("the API root has no account_id", platform_code="invalid_response")
        metadata = {
            **metadata,
            "plan": root.get("pricing_plan_type"),
            "login": root.get("login_id"),
        }
        name = str(root.get("account_name") or root.get("username") or root["account_id"])
        return Authorization(
            external_user_id=str(root["account_id"]),
            display_name=name,
            token=token,
            metadata=metadata,
        )

    async def list_accounts(self, credentials: Credentials) -> list[AccountInfo]:
        """The audiences, with the sender defaults that ``check`` falls back on."""
        answer = await self.api.call(
            target_of(credentials), "GET", "/lists", params={"count": "1000"}
        )
        plan = credentials.metadata.get("plan")
        accounts = []
        for audience in answer.get("lists") or []:
            defaults = audience.get("campaign_defaults") or {}
            accounts.append(
                AccountInfo(
                    kind=AUDIENCE,
                    external_id=str(audience["id"]),
                    name=str(audience.get("name") or audience["id"]),
                    metadata={
                        "fromName": defaults.get("from_name") or "",
                        "fromEmail": defaults.get("from_email") or "",
                        "memberCount": (audience.get("stats") or {}).get("member_count"),
                        "plan": plan,
                    },
                )
            )
        return accounts

    async def health_check(self, credentials: Credentials) -> HealthResult:
        answer = await self.api.call(target_of(credentials), "GET", "/ping")
        return HealthResult(ok=True, detail=str(answer.get("health_status") or "ok"))

    # -- publishing --------------------------------------------------------------------------

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
        """Create (or find again) the campaign, set its content, test it, then send or schedule."""
        target = target_of(credentials)
        scheduled = request.scheduled_at is not None
        if scheduled and credentials.metadata.get("plan") == FREE_PLAN:
            raise UnsupportedCapability(
                "this Mailchimp account is on the free plan, which cannot schedule campaigns"
            )
        campaign = await self._campaign_for(target, account, idempotency_key)
        if campaign is not None and campaign.get("status") in WAITING + OUT:
            return await self._result(target, campaign)
        settings = self._settings(request, account, idempotency_key)
        if campaign is None:
            body = {
                "type": "regular",
                "recipients": {"list_id": account.external_id},
                "settings": settings,
            }
            campaign = await self.api.call(
                target, "POST", "/campaigns", json=body, idempotent=False
            )
        else:  # a draft an earlier attempt left: bring it up to date
            await self.api.call(
                target,
                "PATCH",
                f"/campaigns/{campaign['id']}",
                json={"settings": settings},
                idempotent=True,
            )
        campaign_id = str(campaign["id"])
        await self.api.call(
            target,
            "PUT",
            f"/campaigns/{campaign_id}/content",
            json=content.campaign_content(request),
        )
        notes: list[str] = []
        tests = request.options.get("testEmails")
        if tests:
            await self.send_test(target, campaign_id, tests, request.options.get("testSendType"))
            notes.append(f"test email sent to {', '.join(tests)}")
        if request.options.get("testOnly"):
            notes.append("testOnly: the campaign was left as a draft")
            return PublishResult(campaign_id, campaign.get("archive_url"), notes=tuple(notes))
        if scheduled:
            return await self._schedule(target, campaign, request.scheduled_at, notes)
        await self.api.call(
            target, "POST", f"/campaigns/{campaign_id}/actions/send", idempotent=False
        )
        return PublishResult(campaign_id, campaign.get("archive_url"), notes=tuple(notes))

    async def send_test(
        self, target: Target, campaign_id: str, emails: list[str], send_type: str | None
    ) -> None:
        body = {"test_emails": list(emails), "send_type": send_type or "html"}
        # A repeated test email is harmless: retry it like an idempotent call.
        await self.api.call(
            target, "POST", f"/campaigns/{campaign_id}/actions/test", json=body, idempotent=True
        )

    def _settings(self, request: PublishRequest, account: AccountRef, key: str) -> dict[str, Any]:
        from_name, reply_to = checks.sender(request, account)
        options = request.options
        name = str(options.get("campaignTitle") or request.title or "").strip()
        settings = {
            "subject_line": (request.title or "").strip(),
            "title": f"{name[:80]} {_tag(key)}",
            "from_name": from_name,
            "reply_to": reply_to,
        }
        if options.get("previewText"):
            settings["preview_text"] = options["previewText"]
        return settings

    async def _schedule(
        self, target: Target, campaign: dict, when: datetime, notes: list[str]
    ) -> PublishResult:
        campaign_id = str(campaign["id"])
        send_at = round_up_to_quarter(when)
        if send_at != when.astimezone(UTC):
            notes.append(
                f"Mailchimp sends on the quarter hour: the send time was rounded up from "
                f"{when.astimezone(UTC):%H:%M:%S} to {send_at:%H:%M} UTC"
            )
        try:
            await self.api.call(
                target,
                "POST",
                f"/campaigns/{campaign_id}/actions/schedule",
                json={"schedule_time": send_at.isoformat()},
                idempotent=True,  # scheduling twice to the same time changes nothing
            )
        except InvalidRequest as err:
            if "paid plan" not in err.detail:
                raise
            # The plan cannot schedule after all: leave no draft behind, let the core schedule.
            await self.api.call(target, "DELETE", f"/campaigns/{campaign_id}")
            raise UnsupportedCapability(f"Mailchimp refused to schedule: {err.detail}") from err
        return PublishResult(
            campaign_id,
            campaign.get("archive_url"),
            processing=True,
            poll_at=send_at,
            handle={"campaignId": campaign_id, "sendTime": send_at.isoformat()},
            notes=tuple(notes),
        )

    async def _campaign_for(
        self, target: Target, account: AccountRef, idempotency_key: str
    ) -> dict | None:
        """The campaign an earlier attempt of this job made, found by the tag in its title."""
        answer = await self.api.call(
            target,
            "GET",
            "/campaigns",
            params={
                "list_id": account.external_id,
                "count": "1000",
                "sort_field": "create_time",
                "sort_dir": "DESC",
            },
        )
        tag = _tag(idempotency_key)
        for campaign in answer.get("campaigns") or []:
            if str((campaign.get("settings") or {}).get("title", "")).endswith(tag):
                return campaign
        return None

    async def _result(self, target: Target, campaign: dict) -> PublishResult:
        campaign_id = str(campaign["id"])
        status = campaign.get("status")
        if status in OUT:
            return PublishResult(campaign_id, campaign.get("archive_url"))
        if status in WAITING:
            send_time = _parse_time(campaign.get("send_time"))
            return PublishResult(
                campaign_id,
                campaign.get("archive_url"),
                processing=True,
                poll_at=send_time,
                handle={
                    "campaignId": campaign_id,
                    "sendTime": send_time.isoformat() if send_time else None,
                },
            )
        raise InvalidRequest(
            f"campaign {campaign_id} is {status} at Mailchimp; it will not be sent",
            platform_code=str(status),
        )

    async def find_published(
        self,
        request: PublishRequest,
        account: AccountRef,
        credentials: Credentials,
        *,
        idempotency_key: str,
    ) -> PublishResult | None:
        """A campaign that went out (or is scheduled) for this job; a draft is not published."""
        target = target_of(credentials)
        campaign = await self._campaign_for(target, account, idempotency_key)
        if campaign is None or campaign.get("status") in DRAFT:
            return None  # publish() picks the draft up again
        return await self._result(target, campaign)

    async def poll(
        self, handle: dict[str, Any], account: AccountRef, credentials: Credentials
    ) -> PublishResult:
        """A scheduled campaign: still waiting, going out (done), or unscheduled elsewhere."""
        target = target_of(credentials)
        campaign = await self.api.call(target, "GET", f"/campaigns/{handle['campaignId']}")
        return await self._result(target, campaign)

    async def cancel_scheduled(
        self, remote_id: str, account: AccountRef, credentials: Credentials
    ) -> None:
        """Unschedule, then delete the draft: it was made only for the cancelled job."""
        target = target_of(credentials)
        try:
            campaign = await self.api.call(target, "GET", f"/campaigns/{remote_id}")
        except NotFound:
            return
        if campaign.get("status") in OUT:
            raise InvalidRequest(
                f"campaign {remote_id} has already been sent; it cannot be cancelled",
                platform_code=str(campaign.get("status")),
            )
        if campaign.get("status") in WAITING:
            await self.api.call(
                target, "POST", f"/campaigns/{remote_id}/actions/unschedule", idempotent=True
            )
        try:
            await self.api.call(target, "DELETE", f"/campaigns/{remote_id}")
        except NotFound:
            return

    async def delete(self, remote_id: str, account: AccountRef, credentials: Credentials) -> None:
        """Drafts and scheduled campaigns go; a sent one cannot be taken back."""
        target = target_of(credentials)
        campaign = await self.api.call(target, "GET", f"/campaigns/{remote_id}")
        status = campaign.get("status")
        if status in OUT:
            raise InvalidRequest(
                f"campaign {remote_id} has been sent: the emails are in the recipients' inboxes "
                "and a sent campaign cannot be deleted",
                platform_code="campaign_sent",
            )
        if status in WAITING:
            await self.api.call(
                target, "POST", f"/campaigns/{remote_id}/actions/unschedule", idempotent=True
            )
        await self.api.call(target, "DELETE", f"/campaigns/{remote_id}")

    async def fetch_analytics(
        self, remote_id: str, account: AccountRef, credentials: Credentials
    ) -> Analytics:
        report = await self.api.call(target_of(credentials), "GET", f"/reports/{remote_id}")
        return reports.analytics(report)

    # -- audience webhooks (the core's ingress checked the URL secret) -----------------------

    def webhook_handshake(self, query: Mapping[str, str]) -> str | None:
        """Mailchimp checks a new webhook URL with a bare GET and wants a 200."""
        return ""

    def verify_webhook(self, delivery: WebhookDelivery) -> bool:
        # No signature exists: reaching the secret URL is the proof.
        return delivery.url_secret is not None

    def parse_webhook(self, delivery: WebhookDelivery) -> list[PlatformEvent]:
        if webhooks.is_validation(delivery.method, delivery.body):
            return []  # some say the validation is an empty POST: answer it, store nothing
        try:
            event = webhooks.parse(delivery.body)
        except webhooks.WebhookFormatError as err:
            raise BadRequest(f"not a Mailchimp audience event: {err}") from None
        # The event is about its audience: the core accepts it only if that audience is one of
        # the connection's whose secret URL it came to.
        return [
            PlatformEvent(
                key=event["dedupeKey"],
                kind=event["name"],
                external_id=event["listId"] or None,
                data=event,
                occurred_at=_parse_time(event["firedAt"]),
            )
        ]

    async def handle_webhook(self, event: PlatformEvent, context: WebhookContext) -> None:
        """Tell the connection whose secret URL it came to, as a ``mailchimp.*`` event.

        Only that one: another tenant connected to the same Mailchimp account registers its own
        URL and gets its own delivery.
        """
        connection = context.connection
        if connection is None:  # the core sends Mailchimp's deliveries to secret URLs only
            self.log.warning("mailchimp.webhook_unrouted", kind=event.kind)
            return
        await context.emit(
            Event(
                event.kind,
                tenant_id=connection.tenant_id,
                data={
                    "connectionId": connection.id,
                    "listId": event.data.get("listId"),
                    "email": event.data.get("email"),
                    "firedAt": event.data.get("firedAt"),
                    "data": event.data.get("data"),
                },
                occurred_at=event.occurred_at,
            )
        )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None

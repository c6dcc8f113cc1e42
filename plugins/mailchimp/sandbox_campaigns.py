"""The Mailchimp sandbox's campaigns: status machine, content, actions, and reports that grow."""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .sandbox_audiences import check_email, rfc3339
from .sandbox_state import TEMPLATES, Account, Campaign, McError, invalid, new_id, not_found

if TYPE_CHECKING:
    from .sandbox import MailchimpSandbox

TYPES = ("regular", "plaintext", "absplit", "rss", "variate")
SUPPORTED_TYPES = ("regular", "plaintext")
SUBJECT_MAX = 150
PREVIEW_MAX = 150
FROM_NAME_MAX = 100
SETTINGS = ("subject_line", "preview_text", "title", "from_name", "reply_to", "to_name")
# Engagement a sent campaign reaches after a day (fractions of emails sent).
OPEN, CLICK, UNSUB, ABUSE, FORWARD = 0.42, 0.08, 0.003, 0.001, 0.002
HARD, SOFT = 0.004, 0.006


def bad_request(detail: str) -> McError:
    return McError(400, "Bad Request", detail)


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise invalid("schedule_time", "schedule_time is required (ISO 8601, UTC)")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("schedule_time", "schedule_time is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise invalid("schedule_time", "schedule_time needs a UTC offset")
    return when


class CampaignsApi:
    """Handlers for ``/campaigns/...`` and ``/reports/...``."""

    def __init__(self, owner: MailchimpSandbox) -> None:
        self.owner = owner

    @property
    def now(self) -> float:
        return self.owner.clock.timestamp()

    def campaign(self, account: Account, campaign_id: str) -> Campaign:
        found = self.owner.campaigns.get(campaign_id)
        if found is None or found.account_id != account.id:
            raise not_found(f"campaign {campaign_id}")
        found.advance(self.now, self.owner.audiences.get(found.list_id))
        return found

    def as_api(self, campaign: Campaign) -> dict[str, Any]:
        audience = self.owner.audiences.get(campaign.list_id)
        account = next(a for a in self.owner.accounts if a.id == campaign.account_id)
        answer: dict[str, Any] = {
            "id": campaign.id,
            "web_id": campaign.web_id,
            "type": campaign.type,
            "create_time": rfc3339(campaign.created),
            "archive_url": f"https://mailchi.mp/{account.login}/{campaign.id}",
            "long_archive_url": f"https://{account.dc}.campaign-archive.com/?u={account.id}&id={campaign.id}",
            "status": campaign.status,
            "emails_sent": campaign.emails_sent,
            "send_time": rfc3339(campaign.send_time) if campaign.send_time else "",
            "content_type": "template" if campaign.template else "html",
            "recipients": {
                "list_id": campaign.list_id,
                "list_name": audience.name if audience else "",
                "recipient_count": audience.subscribed() if audience else 0,
            },
            "settings": {k: campaign.settings.get(k, "") for k in SETTINGS},
            "tracking": {"opens": True, "html_clicks": True, "text_clicks": False},
        }
        if campaign.status in ("sending", "sent"):
            report = self.report(campaign)
            answer["report_summary"] = {
                "opens": report["opens"]["opens_total"],
                "unique_opens": report["opens"]["unique_opens"],
                "open_rate": report["opens"]["open_rate"],
                "clicks": report["clicks"]["clicks_total"],
                "subscriber_clicks": report["clicks"]["unique_subscriber_clicks"],
                "click_rate": report["clicks"]["click_rate"],
            }
        return answer

    # -- CRUD --------------------------------------------------------------------------------

    async def create(self, request: web.Request, account: Account) -> web.Response:
        body = await self.owner.body(request)
        kind = body.get("type")
        if kind not in TYPES:
            raise invalid("type", f"type must be one of {', '.join(TYPES)}")
        if kind not in SUPPORTED_TYPES:
            raise bad_request(f"the sandbox makes only {' and '.join(SUPPORTED_TYPES)} campaigns")
        recipients = body.get("recipients") or {}
        list_id = recipients.get("list_id") if isinstance(recipients, dict) else None
        audience = self.owner.audiences.get(list_id or "")
        if audience is None or audience.account_id != account.id:
            raise invalid("recipients.list_id", "Please provide a valid list_id.")
        settings = self.check_settings(body.get("settings") or {})
        number = len(self.owner.campaigns) + 1
        campaign = Campaign(
            new_id(), 100000 + number, account.id, kind, list_id, settings, self.now
        )
        self.owner.campaigns[campaign.id] = campaign
        return web.json_response(self.as_api(campaign))

    def check_settings(self, settings: Any) -> dict[str, Any]:
        if not isinstance(settings, dict):
            raise invalid("settings", "settings must be an object")
        for name, limit in (
            ("subject_line", SUBJECT_MAX),
            ("preview_text", PREVIEW_MAX),
            ("from_name", FROM_NAME_MAX),
        ):
            value = settings.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                raise invalid(
                    f"settings.{name}", f"{name} must be text of at most {limit} characters"
                )
        if settings.get("reply_to"):
            check_email(settings["reply_to"], "settings.reply_to")
        return {k: v for k, v in settings.items() if k in SETTINGS}

    async def listing(self, request: web.Request, account: Account) -> web.Response:
        wanted = request.query.get("status")
        found = [
            self.campaign(account, c.id)
            for c in list(self.owner.campaigns.values())
            if c.account_id == account.id
        ]
        listed = [self.as_api(c) for c in found if wanted is None or c.status == wanted]
        return web.json_response({"campaigns": listed, "total_items": len(listed)})

    async def get(self, request: web.Request, account: Account) -> web.Response:
        return web.json_response(self.as_api(self.campaign(account, request.match_info["id"])))

    async def update(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        if campaign.status not in ("save", "paused"):
            raise bad_request(f"This campaign cannot be updated: its status is {campaign.status}.")
        body = await self.owner.body(request)
        campaign.settings.update(self.check_settings(body.get("settings") or {}))
        return web.json_response(self.as_api(campaign))

    async def remove(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        if campaign.status == "schedule":
            raise bad_request("This campaign is scheduled: unschedule it before deleting it.")
        if campaign.status in ("sending", "sent"):
            raise bad_request("This campaign has been sent and cannot be deleted.")
        del self.owner.campaigns[campaign.id]
        return web.Response(status=204)

    # -- content -----------------------------------------------------------------------------

    def content_json(self, campaign: Campaign) -> dict[str, Any]:
        html = campaign.html or ""
        return {
            "html": html,
            "plain_text": campaign.plain_text or "",
            "archive_html": html,
            "template": campaign.template,
        }

    async def content(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        if request.method == "GET":
            return web.json_response(self.content_json(campaign))
        if campaign.status in ("sending", "sent"):
            raise bad_request("The content of a sent campaign cannot be changed.")
        body = await self.owner.body(request)
        if isinstance(body.get("template"), dict):
            template = body["template"]
            sections = template.get("sections") or {}
            if template.get("id") not in TEMPLATES:
                raise invalid("template.id", "This template does not exist.")
            if not isinstance(sections, dict):
                raise invalid("template.sections", "sections must be an object")
            campaign.template = {"id": template["id"], "sections": sections}
            campaign.html = "".join(
                f'<div mc:edit="{name}">{sections.get(name, "")}</div>'
                for name in TEMPLATES[template["id"]]
            )
        elif isinstance(body.get("html"), str):
            campaign.html, campaign.template = body["html"], None
        elif isinstance(body.get("plain_text"), str):
            campaign.plain_text = body["plain_text"]
            campaign.html = campaign.html or f"<pre>{escape(body['plain_text'])}</pre>"
        else:
            raise invalid("html", "Provide html, plain_text or a template.")
        return web.json_response(self.content_json(campaign))

    def checklist(self, campaign: Campaign) -> list[dict[str, Any]]:
        settings = campaign.settings
        problems = []
        for number, (ok, heading, details) in enumerate(
            (
                (bool(settings.get("subject_line")), "Subject line", "Add a subject line."),
                (bool(settings.get("from_name")), "From name", "Add a from name."),
                (bool(settings.get("reply_to")), "Reply-to address", "Add a reply-to address."),
                (bool(campaign.html or campaign.plain_text), "Content", "Add content."),
            ),
            start=1,
        ):
            if not ok:
                problems.append(
                    {"type": "error", "id": number, "heading": heading, "details": details}
                )
        return problems

    async def send_checklist(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        items = self.checklist(campaign) or [
            {"type": "success", "id": 0, "heading": "Ready", "details": "Ready to send."}
        ]
        ready = all(item["type"] != "error" for item in items)
        return web.json_response({"is_ready": ready, "items": items})

    def must_be_ready(self, campaign: Campaign) -> None:
        if campaign.status not in ("save", "paused"):
            raise bad_request(f"This campaign cannot be sent: its status is {campaign.status}.")
        problems = self.checklist(campaign)
        if problems:
            raise McError(
                400,
                "Bad Request",
                "Your Campaign is not ready to send.",
                [{"field": p["heading"], "message": p["details"]} for p in problems],
            )

    # -- actions (204 No Content) ------------------------------------------------------------

    async def send(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        self.must_be_ready(campaign)
        audience = self.owner.audiences[campaign.list_id]
        campaign.status, campaign.send_time = "sending", self.now
        campaign.emails_sent = audience.subscribed()
        return web.Response(status=204)

    async def schedule(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        body = await self.owner.body(request)
        when = parse_time(body.get("schedule_time"))
        if when.minute % 15 or when.second or when.microsecond:
            raise invalid(
                "schedule_time",
                "Schedule time must be on the quarter-hour (:00, :15, :30, :45).",
            )
        if when.timestamp() <= self.now:
            raise invalid("schedule_time", "Schedule time must be in the future.")
        if (body.get("timewarp") or body.get("batch_delivery")) and account.plan != "monthly":
            raise bad_request("Timewarp and batch delivery need a Standard plan or higher.")
        if not account.can_schedule:
            raise bad_request(
                "Scheduling is available on paid plans. Upgrade your account to schedule campaigns."
            )
        self.must_be_ready(campaign)
        campaign.status, campaign.send_time = "schedule", when.timestamp()
        return web.Response(status=204)

    async def unschedule(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        if campaign.status != "schedule":
            raise bad_request(f"This campaign is not scheduled (status {campaign.status}).")
        campaign.status, campaign.send_time = "save", None
        return web.Response(status=204)

    async def test(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        body = await self.owner.body(request)
        emails = body.get("test_emails")
        if not isinstance(emails, list) or not emails:
            raise invalid("test_emails", "test_emails must be a non-empty list")
        for email in emails:
            check_email(email, "test_emails")
        send_type = body.get("send_type")
        if send_type not in ("html", "plaintext"):
            raise invalid("send_type", "send_type must be html or plaintext")
        if not (campaign.html or campaign.plain_text):
            raise bad_request("Add content to the campaign before sending a test.")
        campaign.tests.append({"emails": list(emails), "sendType": send_type, "at": self.now})
        return web.Response(status=204)

    async def replicate(self, request: web.Request, account: Account) -> web.Response:
        source = self.campaign(account, request.match_info["id"])
        number = len(self.owner.campaigns) + 1
        copy = Campaign(
            new_id(),
            100000 + number,
            account.id,
            source.type,
            source.list_id,
            dict(source.settings),
            self.now,
            html=source.html,
            plain_text=source.plain_text,
            template=source.template,
        )
        self.owner.campaigns[copy.id] = copy
        return web.json_response(self.as_api(copy))

    # -- reports -----------------------------------------------------------------------------

    def report(self, campaign: Campaign) -> dict[str, Any]:
        """Figures that grow over the first day after the send, on the sandbox clock."""
        sent = campaign.emails_sent
        hours = max(0.0, (self.now - (campaign.send_time or self.now)) / 3600)
        grown = min(1.0, hours / 24)
        hard, soft = math.floor(sent * HARD), math.floor(sent * SOFT)
        delivered = max(sent - hard - soft, 0)
        unique_opens = math.floor(sent * OPEN * grown)
        unique_clicks = math.floor(sent * CLICK * grown)
        opens_total = math.floor(unique_opens * 1.5)
        clicks_total = math.floor(unique_clicks * 1.4)
        audience = self.owner.audiences.get(campaign.list_id)
        return {
            "id": campaign.id,
            "campaign_title": campaign.settings.get("title", ""),
            "type": campaign.type,
            "list_id": campaign.list_id,
            "list_name": audience.name if audience else "",
            "subject_line": campaign.settings.get("subject_line", ""),
            "preview_text": campaign.settings.get("preview_text", ""),
            "emails_sent": sent,
            "abuse_reports": math.floor(sent * ABUSE * grown),
            "unsubscribed": math.floor(sent * UNSUB * grown),
            "send_time": rfc3339(campaign.send_time) if campaign.send_time else "",
            "bounces": {"hard_bounces": hard, "soft_bounces": soft, "syntax_errors": 0},
            "forwards": {"forwards_count": math.floor(sent * FORWARD * grown), "forwards_opens": 0},
            "opens": {
                "opens_total": opens_total,
                "unique_opens": unique_opens,
                "open_rate": round(unique_opens / delivered, 4) if delivered else 0,
                "last_open": rfc3339(self.now) if unique_opens else "",
            },
            "clicks": {
                "clicks_total": clicks_total,
                "unique_clicks": unique_clicks,
                "unique_subscriber_clicks": unique_clicks,
                "click_rate": round(unique_clicks / delivered, 4) if delivered else 0,
                "last_click": rfc3339(self.now) if unique_clicks else "",
            },
            "list_stats": {"sub_rate": 0, "unsub_rate": 0, "open_rate": 0.38, "click_rate": 0.05},
            "industry_stats": {
                "type": "Marketing",
                "open_rate": 0.35,
                "click_rate": 0.04,
                "bounce_rate": 0.01,
            },
        }

    async def reports(self, request: web.Request, account: Account) -> web.Response:
        found = [
            self.campaign(account, c.id)
            for c in list(self.owner.campaigns.values())
            if c.account_id == account.id
        ]
        listed = [self.report(c) for c in found if c.status in ("sending", "sent")]
        return web.json_response({"reports": listed, "total_items": len(listed)})

    async def get_report(self, request: web.Request, account: Account) -> web.Response:
        campaign = self.campaign(account, request.match_info["id"])
        if campaign.status not in ("sending", "sent"):
            raise not_found(f"report of campaign {campaign.id} (it has not been sent)")
        return web.json_response(self.report(campaign))

"""The Mailchimp sandbox's state: accounts, audiences, members, campaigns, batches, webhooks."""

# The platform's facts are written out here (data centres, plans, audience defaults), not read
# from the connector, so a connector that disagrees with the platform fails its tests.

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ERROR_DOCS = "https://mailchimp.com/developer/marketing/docs/errors/"
# Campaigns take this long (sandbox seconds) from "sending" to "sent".
SEND_SECONDS = 60.0
# Batches are worked through this long (sandbox seconds) after they are submitted.
BATCH_SECONDS = 5.0
SUBSCRIBER_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")


class McError(Exception):
    """An error answer of the Marketing API: an RFC 7807 problem document."""

    def __init__(
        self, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": ERROR_DOCS,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": str(uuid.uuid4()),
        }
        if self.errors:
            body["errors"] = self.errors
        return body

    def response(self, dc: str = "us6") -> web.Response:
        body = self.document()
        return web.Response(
            status=self.status,
            text=json.dumps(body),
            content_type="application/problem+json",
            headers={
                "X-Request-Id": body["instance"],
                "Link": f"<https://{dc}.api.mailchimp.com/schema/3.0/ProblemDetailDocument.json>; "
                'rel="describedBy"',
            },
        )


def invalid(field_name: str, message: str) -> McError:
    """400 Invalid Resource naming one field, as the API answers a validation failure."""
    return McError(
        400,
        "Invalid Resource",
        "The resource submitted could not be validated. For field-specific details, see the "
        "'errors' array.",
        [{"field": field_name, "message": message}],
    )


def not_found(what: str) -> McError:
    return McError(404, "Resource Not Found", f"The requested resource could not be found: {what}")


def subscriber_hash(email: str) -> str:
    """A member's id: the MD5 hex digest of the lower-cased address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def new_id(length: int = 10) -> str:
    return secrets.token_hex(length // 2 + 1)[:length]


@dataclass(frozen=True, slots=True)
class Account:
    """A Mailchimp account (a "user"), its data centre, plan and API key."""

    id: str
    login: str
    name: str
    email: str
    dc: str
    plan: str  # pricing_plan_type: "monthly", "pay_as_you_go" or "forever_free"
    api_key: str
    disabled: bool = False

    @property
    def can_schedule(self) -> bool:
        # Scheduling a regular campaign needs a paid plan (Essentials or higher).
        return self.plan != "forever_free"

    def root(self) -> dict[str, Any]:
        return {
            "account_id": self.id,
            "login_id": self.login,
            "account_name": self.name,
            "email": self.email,
            "username": self.login,
            "role": "owner",
            "pricing_plan_type": self.plan,
            "account_timezone": "UTC",
            "contact": {"company": self.name, "country": "US"},
        }


# Fixed accounts every sandbox has: a paid one, a free one (cannot schedule), a disabled one.
ACCOUNTS = (
    Account(
        "8d3a3f4c2b1e0a9f8e7d6c5b4",
        "acme",
        "Acme Sandbox",
        "owner@acme.example",
        "us6",
        "monthly",
        "0123456789abcdef0123456789abcdef-us6",
    ),
    Account(
        "1f2e3d4c5b6a79880716253a4",
        "freebie",
        "Freebie Sandbox",
        "owner@freebie.example",
        "us19",
        "forever_free",
        "fedcba9876543210fedcba9876543210-us19",
    ),
    Account(
        "0a0b0c0d0e0f0a0b0c0d0e0f0",
        "disabled",
        "Disabled Sandbox",
        "owner@disabled.example",
        "us6",
        "monthly",
        "00000000000000000000000000000000-us6",
        disabled=True,
    ),
)


@dataclass(slots=True)
class Member:
    email: str
    status: str
    merge_fields: dict[str, Any]
    tags: set[str]
    created: float
    changed: float
    archived: bool = False

    @property
    def id(self) -> str:
        return subscriber_hash(self.email)

    def as_api(self, list_id: str, rfc3339) -> dict[str, Any]:
        return {
            "id": self.id,
            "email_address": self.email,
            "unique_email_id": self.id[:10],
            "status": "archived" if self.archived else self.status,
            "merge_fields": self.merge_fields,
            "tags_count": len(self.tags),
            "tags": [{"id": _tag_id(t), "name": t} for t in sorted(self.tags)],
            "list_id": list_id,
            "timestamp_signup": rfc3339(self.created),
            "last_changed": rfc3339(self.changed),
        }


def _tag_id(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)


@dataclass(slots=True)
class Audience:
    """An audience (a "list") and its members; ``seeded`` subscribers exist only as a count."""

    id: str
    account_id: str
    name: str
    from_name: str
    from_email: str
    seeded: int
    created: float
    members: dict[str, Member] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def subscribed(self) -> int:
        live = sum(1 for m in self.members.values() if m.status == "subscribed" and not m.archived)
        return self.seeded + live

    def as_api(self, rfc3339) -> dict[str, Any]:
        return {
            "id": self.id,
            "web_id": int(self.id[:6], 16),
            "name": self.name,
            "contact": {"company": self.name, "country": "US"},
            "permission_reminder": "You signed up on our website.",
            "campaign_defaults": {
                "from_name": self.from_name,
                "from_email": self.from_email,
                "subject": "",
                "language": "en",
            },
            "date_created": rfc3339(self.created),
            "email_type_option": False,
            "stats": {
                "member_count": self.subscribed(),
                "unsubscribe_count": sum(
                    1 for m in self.members.values() if m.status == "unsubscribed"
                ),
                "cleaned_count": sum(1 for m in self.members.values() if m.status == "cleaned"),
            },
        }


def seed_audiences(now: float) -> dict[str, Audience]:
    audiences = [
        Audience(
            "a1b2c3d4e5", ACCOUNTS[0].id, "Acme Newsletter", "Acme", "news@acme.example", 1000, now
        ),
        # No default sender: a campaign to it needs from name and reply-to given explicitly.
        Audience("f6e5d4c3b2", ACCOUNTS[0].id, "Acme Customers", "", "", 250, now),
        Audience(
            "0f9e8d7c6b", ACCOUNTS[1].id, "Freebie List", "Freebie", "hi@freebie.example", 40, now
        ),
        Audience(
            "9a8b7c6d5e", ACCOUNTS[2].id, "Disabled List", "Nobody", "no@disabled.example", 1, now
        ),
    ]
    return {a.id: a for a in audiences}


# Templates every account can use: their editable (mc:edit) sections.
TEMPLATES = {1001: ("header", "body", "footer")}


@dataclass(slots=True)
class Campaign:
    id: str
    web_id: int
    account_id: str
    type: str
    list_id: str
    settings: dict[str, Any]
    created: float
    status: str = "save"
    send_time: float | None = None
    emails_sent: int = 0
    html: str | None = None
    plain_text: str | None = None
    template: dict[str, Any] | None = None
    tests: list[dict[str, Any]] = field(default_factory=list)

    def advance(self, now: float, audience: Audience | None) -> None:
        """The status machine on the sandbox clock: schedule → sending → sent."""
        if self.status == "schedule" and self.send_time is not None and now >= self.send_time:
            self.status = "sending"
            self.emails_sent = audience.subscribed() if audience else 0
        if (
            self.status == "sending"
            and self.send_time is not None
            and now >= self.send_time + SEND_SECONDS
        ):
            self.status = "sent"


@dataclass(slots=True)
class Batch:
    id: str
    account_id: str
    operations: list[dict[str, Any]]
    submitted: float
    status: str = "pending"
    completed: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errored(self) -> int:
        return sum(1 for r in self.results if r["status_code"] >= 400)

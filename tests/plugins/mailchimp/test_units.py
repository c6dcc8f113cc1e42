"""Pure pieces of the Mailchimp plugin: content, checks, the error table, the metric mapping,
quarter-hour rounding and the webhook parser."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from gateway import (
    AccountRef,
    InvalidRequest,
    NeedsReauth,
    NotFound,
    PermissionDenied,
    PublishRequest,
    RateLimited,
    Transient,
    clock,
)
from gateway.jobs.declared import refusals
from plugins.mailchimp import content, reports, webhooks
from plugins.mailchimp.connector import MailchimpConnector, round_up_to_quarter
from plugins.mailchimp.errors import platform_error
from plugins.mailchimp.members import member_body, subscriber_hash
from plugins.mailchimp.sandbox import MailchimpSandbox

AUDIENCE = AccountRef(
    "acct_1",
    "mailchimp_audience",
    "a1b2c3d4e5",
    "Acme Newsletter",
    {"fromName": "Acme", "fromEmail": "news@acme.example"},
)
BARE = AccountRef("acct_2", "mailchimp_audience", "f6e5d4c3b2", "Customers", {})
MAILCHIMP = MailchimpConnector(SimpleNamespace(http=None, log=None))


def fields(problems) -> list[str]:
    return [p.field for p in problems]


def test_text_is_escaped_and_links_are_kept():
    html = content.paragraphs(
        'Hi <b>you</b> & "them"\nsee https://x.example/a?b=1&c=2.\n\n<script>x</script>'
    )
    assert html == (
        "<p>Hi &lt;b&gt;you&lt;/b&gt; &amp; &quot;them&quot;<br>\n"
        'see <a href="https://x.example/a?b=1&amp;c=2">https://x.example/a?b=1&amp;c=2</a>.</p>\n'
        "<p>&lt;script&gt;x&lt;/script&gt;</p>\n"
    )


def test_images_and_the_call_to_action_are_attribute_safe():
    request = PublishRequest(
        title="T",
        body="b",
        media_urls=('https://cdn.example/a.jpg"onerror="x',),
        link="https://acme.example/?q=<x>",
        options={"ctaText": "Go <now>"},
    )
    html = content.document(request)
    assert 'src="https://cdn.example/a.jpg&quot;onerror=&quot;x"' in html
    assert 'href="https://acme.example/?q=&lt;x&gt;"' in html and ">Go &lt;now&gt;</a>" in html


def test_a_template_gets_its_sections_and_the_body():
    request = PublishRequest(
        title="T", body="Hello", options={"templateId": 1001, "sections": {"header": "<Hi>"}}
    )
    assert content.campaign_content(request) == {
        "template": {
            "id": 1001,
            "sections": {"header": "<p>&lt;Hi&gt;</p>\n", "body": "<p>Hello</p>\n"},
        }
    }


def refused(request: PublishRequest, account: AccountRef) -> list[str]:
    """The fields submit refuses: Mailchimp's declarations (enforced by the core), its check."""
    return fields(refusals(MAILCHIMP, request, account))


def test_checks_find_what_mailchimp_would_refuse():
    assert refused(PublishRequest(title="Hi", body="x"), AUDIENCE) == []
    assert refused(PublishRequest(body="x"), BARE) == [
        "title",
        "options.mailchimp.fromName",
        "options.mailchimp.replyTo",
    ]
    long = refusals(MAILCHIMP, PublishRequest(title="x" * 151, body="x"), AUDIENCE)
    assert [(p.field, p.code) for p in long] == [("title", "too_long")]
    given = PublishRequest(
        title="Hi", body="x", options={"fromName": "Me", "replyTo": "me@acme.example"}
    )
    assert refused(given, BARE) == []
    # Options its schema refuses are answered first, each by its path: the check, which may
    # rely on the schema, is not asked.
    unknown = PublishRequest(
        title="Hi", body="x", options={"colour": "red", "templateId": "7", "testEmails": []}
    )
    assert [(p.field, p.code) for p in refusals(MAILCHIMP, unknown, AUDIENCE)] == [
        ("options.mailchimp.colour", "unknown"),
        ("options.mailchimp.templateId", "type"),
        ("options.mailchimp.testEmails", "minItems"),
    ]
    wrong = PublishRequest(
        title="Hi",
        options={"replyTo": "nope", "testEmails": ["a@b.example", "bad"], "sections": {"x": "y"}},
        link="ftp://x",
    )
    assert refused(wrong, AUDIENCE) == [
        "options.mailchimp.replyTo",
        "options.mailchimp.sections",
        "body",
        "link",
        "options.mailchimp.testEmails",
    ]
    other = AccountRef("acct_3", "facebook_page", "1", "Page", AUDIENCE.metadata)
    assert refused(PublishRequest(title="Hi", body="x"), other) == ["accountId"]
    # Judged on the gateway's clock: a minute ago is past, an hour from now is not.
    past = PublishRequest(title="Hi", body="x", scheduled_at=clock.now() - timedelta(minutes=1))
    assert refused(past, AUDIENCE) == ["scheduledAt"]
    later = PublishRequest(title="Hi", body="x", scheduled_at=clock.now() + timedelta(hours=1))
    assert refused(later, AUDIENCE) == []


@pytest.mark.parametrize(
    ("status", "title", "category"),
    [
        (401, "API Key Invalid", NeedsReauth),
        (403, "Wrong Datacenter", PermissionDenied),
        (403, "User Disabled", PermissionDenied),
        (404, "Resource Not Found", NotFound),
        (429, "Too Many Requests", RateLimited),
        (500, "Internal Server Error", Transient),
        (503, None, Transient),
        (400, "Member Exists", InvalidRequest),
        (405, "Method Not Allowed", InvalidRequest),
    ],
)
def test_the_error_table(status, title, category):
    body = {"title": title, "status": status, "detail": "why"} if title else None
    error = platform_error(status, body, "7" if status == 429 else None)
    assert type(error) is category
    assert error.http_status == status
    assert error.platform_code == (title or f"HTTP {status}")
    if status == 429:
        assert error.retry_after == 7


def test_field_errors_are_carried_over():
    body = {
        "title": "Invalid Resource",
        "status": 400,
        "detail": "see errors",
        "errors": [{"field": "email_address", "message": "bad"}],
    }
    error = platform_error(400, body)
    assert [(e.field, e.message) for e in error.errors] == [("email_address", "bad")]
    assert "email_address: bad" in error.detail


def test_the_report_mapping_leaves_missing_metrics_none():
    report = {
        "emails_sent": 10,
        "opens": {"opens_total": 9, "unique_opens": 5, "open_rate": 0.5},
        "clicks": {"clicks_total": 4, "unique_subscriber_clicks": 3},
        "forwards": {"forwards_count": 1},
    }
    result = reports.analytics(report)
    assert result.metrics == {
        "impressions": 9,
        "reach": 5,
        "views": None,
        "likes": None,
        "comments": None,
        "shares": 1,
        "saves": None,
        "clicks": 4,
        "engagement": 3,
    }
    assert result.raw is report
    assert set(reports.analytics({}).metrics.values()) == {None}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-12-01T09:00:00+00:00", "2026-12-01T09:00:00+00:00"),
        ("2026-12-01T09:00:01+00:00", "2026-12-01T09:15:00+00:00"),
        ("2026-12-01T09:46:00+00:00", "2026-12-01T10:00:00+00:00"),
        ("2026-12-31T23:59:00+00:00", "2027-01-01T00:00:00+00:00"),
        ("2026-12-01T10:05:00+01:00", "2026-12-01T09:15:00+00:00"),
    ],
)
def test_round_up_to_the_quarter_hour(given, expected):
    assert round_up_to_quarter(datetime.fromisoformat(given)).isoformat() == expected


def test_subscriber_hash_is_md5_of_the_lower_cased_address():
    assert subscriber_hash("Jane@Example.COM") == hashlib.md5(b"jane@example.com").hexdigest()
    assert member_body({"email": "a@b.example", "tags": ["x"]}) == {
        "email_address": "a@b.example",
        "status_if_new": "subscribed",
        "tags": ["x"],
    }


@pytest.mark.parametrize("event", webhooks.EVENTS)
def test_webhook_deliveries_parse_into_events(event):
    body, headers = MailchimpSandbox().build_webhook(event, {})
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    parsed = webhooks.parse(body)
    assert parsed["name"] == f"mailchimp.{event}" and parsed["listId"] == "a1b2c3d4e5"
    assert parsed["firedAt"].endswith("Z")
    assert parsed["dedupeKey"] == webhooks.parse(body)["dedupeKey"]
    if event == "subscribe":
        assert parsed["email"] == "jane@example.com"
        assert parsed["data"]["merges"] == {
            "EMAIL": "jane@example.com",
            "FNAME": "Jane",
            "LNAME": "Doe",
        }
    if event == "upemail":
        assert parsed["email"] == "jane.new@example.com"
    if event == "campaign":
        assert parsed["data"]["subject"] == "Spring news" and parsed["email"] is None


def test_webhook_dedupe_keys_differ_between_events():
    first = webhooks.parse(b"type=subscribe&fired_at=2009-03-26+21:35:57&data[email]=a@x.example")
    second = webhooks.parse(b"type=subscribe&fired_at=2009-03-26+21:35:58&data[email]=a@x.example")
    assert first["dedupeKey"] != second["dedupeKey"]
    assert first["firedAt"] == "2009-03-26T21:35:57Z"


@pytest.mark.parametrize(
    "body",
    [
        b"type=nonsense",
        b"fired_at=2009-03-26+21:35:57",
        b"type=subscribe&fired_at=yesterday",
        b"type=subscribe&data=x&data[email]=a",
        b"\xff\xfe",
    ],
)
def test_bad_webhook_bodies_are_refused(body):
    with pytest.raises(webhooks.WebhookFormatError):
        webhooks.parse(body)


def test_validation_requests_are_recognised():
    assert webhooks.is_validation("GET", b"")
    assert webhooks.is_validation("POST", b"  ")
    assert not webhooks.is_validation("POST", b"type=subscribe")

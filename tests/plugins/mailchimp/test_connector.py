"""The Mailchimp connector against its sandbox, mounted in a real gateway on a real port."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from gateway import (
    AccountRef,
    Credentials,
    InvalidRequest,
    NeedsReauth,
    NotFound,
    PermissionDenied,
    PublishRequest,
    RateLimited,
    Secret,
    Transient,
    UnsupportedCapability,
    clock,
)
from plugins.mailchimp.connector import round_up_to_quarter

from .conftest import ACME, DISABLED, FREEBIE, Running

pytestmark = pytest.mark.usefixtures("running")


async def connect(running: Running, api_key: str = ACME.api_key):
    authorization = await running.connector.verify_api_key(api_key)
    credentials = Credentials(
        connection_id="conn_test",
        platform="mailchimp",
        access_token=Secret(api_key),
        metadata=dict(authorization.metadata),
    )
    accounts = await running.connector.list_accounts(credentials)
    refs = {
        a.external_id: AccountRef(
            f"acct_{a.external_id}", a.kind, a.external_id, a.name, a.metadata
        )
        for a in accounts
    }
    return authorization, credentials, refs


def email(**fields) -> PublishRequest:
    return PublishRequest(
        title=fields.pop("title", "Spring news"),
        body=fields.pop("body", "Hello <friends> & family.\n\nSee https://acme.example/x."),
        **fields,
    )


async def campaign(running: Running, campaign_id: str) -> dict:
    return next(p for p in (await running.state())["posts"] if p["id"] == campaign_id)


def quarter_ahead(minutes: int) -> datetime:
    return round_up_to_quarter(clock.now() + timedelta(minutes=minutes))


async def test_an_api_key_is_checked_at_its_data_centre(running: Running):
    authorization, credentials, accounts = await connect(running)
    assert authorization.external_user_id == ACME.id
    assert authorization.metadata == {
        "auth": "apiKey",
        "dc": "us6",
        "apiEndpoint": "https://us6.api.mailchimp.com",
        "plan": "monthly",
        "login": "acme",
    }
    assert {a.name for a in accounts.values()} == {"Acme Newsletter", "Acme Customers"}
    assert accounts["a1b2c3d4e5"].metadata["fromEmail"] == "news@acme.example"
    assert (await running.connector.health_check(credentials)).ok
    pings = await running.journal("/us6.api.mailchimp.com/3.0/ping")
    assert pings[0]["headers"]["authorization"].startswith("Basic sha256:")


async def test_bad_keys_are_refused_with_the_reason(running: Running):
    with pytest.raises(InvalidRequest, match="malformed"):
        await running.connector.verify_api_key("not-a-key-us6")
    with pytest.raises(NeedsReauth, match="API Key Invalid"):
        await running.connector.verify_api_key("f" * 32 + "-us6")
    with pytest.raises(PermissionDenied, match="User Disabled"):
        await running.connector.verify_api_key(DISABLED.api_key)


async def test_publish_now_sends_a_campaign_with_safe_html(running: Running):
    _, credentials, accounts = await connect(running)
    request = email(
        media_urls=("https://cdn.example.com/a.jpg",),
        link="https://acme.example/spring?a=1&b=2",
        options={"previewText": "What's new", "ctaText": "Shop now"},
    )
    result = await running.connector.publish(
        request, accounts["a1b2c3d4e5"], credentials, idempotency_key="job_1"
    )
    assert not result.processing
    sent = await campaign(running, result.remote_id)
    assert sent["status"] == "sending"
    assert sent["settings"]["subject_line"] == "Spring news"
    assert sent["settings"]["preview_text"] == "What's new"
    assert (sent["settings"]["from_name"], sent["settings"]["reply_to"]) == (
        "Acme",
        "news@acme.example",
    )
    html = sent["html"]
    assert "Hello &lt;friends&gt; &amp; family." in html and "<friends>" not in html
    assert '<a href="https://acme.example/x">https://acme.example/x</a>.' in html
    assert '<img src="https://cdn.example.com/a.jpg"' in html
    assert 'href="https://acme.example/spring?a=1&amp;b=2"' in html and ">Shop now</a>" in html


async def test_a_retried_publish_finds_its_campaign_instead_of_making_another(running: Running):
    _, credentials, accounts = await connect(running)
    await running.control(
        "POST", "faults", {"method": "POST", "path": "*/actions/send", "status": 503}
    )
    with pytest.raises(Transient):
        await running.connector.publish(
            email(), accounts["a1b2c3d4e5"], credentials, idempotency_key="job_2"
        )
    found = await running.connector.find_published(
        email(), accounts["a1b2c3d4e5"], credentials, idempotency_key="job_2"
    )
    assert found is None  # a draft is not published
    result = await running.connector.publish(
        email(), accounts["a1b2c3d4e5"], credentials, idempotency_key="job_2"
    )
    posts = (await running.state())["posts"]
    assert [p["id"] for p in posts] == [result.remote_id]
    assert posts[0]["status"] == "sending"
    again = await running.connector.find_published(
        email(), accounts["a1b2c3d4e5"], credentials, idempotency_key="job_2"
    )
    assert again is not None and again.remote_id == result.remote_id


async def test_test_emails_through_options(running: Running):
    _, credentials, accounts = await connect(running)
    options = {"testEmails": ["qa@acme.example"], "testOnly": True}
    result = await running.connector.publish(
        email(options=options), accounts["a1b2c3d4e5"], credentials, idempotency_key="job_3"
    )
    draft = await campaign(running, result.remote_id)
    assert draft["status"] == "save"
    assert [t["emails"] for t in draft["tests"]] == [["qa@acme.example"]]
    assert any("test email sent" in note for note in result.notes)


async def test_template_content_from_options(running: Running):
    _, credentials, accounts = await connect(running)
    options = {"templateId": 1001, "sections": {"header": "Big <news>"}}
    result = await running.connector.publish(
        email(options=options), accounts["a1b2c3d4e5"], credentials, idempotency_key="job_4"
    )
    made = await campaign(running, result.remote_id)
    assert made["template"]["id"] == 1001
    assert made["template"]["sections"]["header"] == "<p>Big &lt;news&gt;</p>\n"
    assert "Hello &lt;friends&gt;" in made["template"]["sections"]["body"]


async def test_scheduling_rounds_up_to_the_quarter_hour_then_polls_until_sent(running: Running):
    _, credentials, accounts = await connect(running)
    base = quarter_ahead(120)
    asked = base + timedelta(minutes=4, seconds=10)
    result = await running.connector.publish(
        email(scheduled_at=asked), accounts["a1b2c3d4e5"], credentials, idempotency_key="job_5"
    )
    expected = base + timedelta(minutes=15)
    assert result.processing and result.poll_at == expected
    assert "rounded up" in result.notes[0] and f"{expected:%H:%M}" in result.notes[0]
    waiting = await running.connector.poll(result.handle, accounts["a1b2c3d4e5"], credentials)
    assert waiting.processing and waiting.poll_at == expected
    await running.advance((expected - clock.now()).total_seconds() + 5)
    done = await running.connector.poll(result.handle, accounts["a1b2c3d4e5"], credentials)
    assert not done.processing and done.remote_id == result.remote_id


async def test_a_free_plan_cannot_schedule_so_the_core_schedules(running: Running):
    _, credentials, accounts = await connect(running, FREEBIE.api_key)
    with pytest.raises(UnsupportedCapability, match="free plan"):
        await running.connector.publish(
            email(scheduled_at=quarter_ahead(60)),
            accounts["0f9e8d7c6b"],
            credentials,
            idempotency_key="job_6",
        )
    assert (await running.state())["posts"] == []


async def test_cancel_scheduled_unschedules_and_removes_the_draft(running: Running):
    _, credentials, accounts = await connect(running)
    result = await running.connector.publish(
        email(scheduled_at=quarter_ahead(60)),
        accounts["a1b2c3d4e5"],
        credentials,
        idempotency_key="job_7",
    )
    assert (await campaign(running, result.remote_id))["status"] == "schedule"
    await running.connector.cancel_scheduled(result.remote_id, accounts["a1b2c3d4e5"], credentials)
    assert (await running.state())["posts"] == []
    unschedules = await running.journal("*/actions/unschedule")
    assert [e["status"] for e in unschedules] == [204]


async def test_delete_takes_drafts_and_scheduled_but_not_sent_campaigns(running: Running):
    _, credentials, accounts = await connect(running)
    audience = accounts["a1b2c3d4e5"]
    scheduled = await running.connector.publish(
        email(scheduled_at=quarter_ahead(60)), audience, credentials, idempotency_key="job_8"
    )
    await running.connector.delete(scheduled.remote_id, audience, credentials)
    sent = await running.connector.publish(email(), audience, credentials, idempotency_key="job_9")
    with pytest.raises(InvalidRequest, match="cannot be deleted") as caught:
        await running.connector.delete(sent.remote_id, audience, credentials)
    assert caught.value.platform_code == "campaign_sent"
    with pytest.raises(NotFound):
        await running.connector.delete(scheduled.remote_id, audience, credentials)


async def test_analytics_follow_the_report_as_the_clock_moves(running: Running):
    _, credentials, accounts = await connect(running)
    audience = accounts["a1b2c3d4e5"]
    sent = await running.connector.publish(email(), audience, credentials, idempotency_key="job_a")
    early = await running.connector.fetch_analytics(sent.remote_id, audience, credentials)
    assert early.metrics["reach"] == 0 and early.metrics["views"] is None
    await running.advance(24 * 3600)
    later = await running.connector.fetch_analytics(sent.remote_id, audience, credentials)
    raw = later.raw
    assert later.metrics == {
        "impressions": raw["opens"]["opens_total"],
        "reach": raw["opens"]["unique_opens"],
        "views": None,
        "likes": None,
        "comments": None,
        "shares": raw["forwards"]["forwards_count"],
        "saves": None,
        "clicks": raw["clicks"]["clicks_total"],
        "engagement": raw["clicks"]["unique_subscriber_clicks"],
    }
    assert later.metrics["reach"] == 420 and raw["emails_sent"] == 1000


@pytest.mark.parametrize(
    ("status", "body", "category"),
    [
        (401, None, NeedsReauth),
        (403, {"title": "Wrong Datacenter", "status": 403, "detail": "use us6"}, PermissionDenied),
        (404, None, NotFound),
        (429, None, RateLimited),
        (500, None, Transient),
        (
            400,
            {
                "title": "Invalid Resource",
                "status": 400,
                "detail": "see errors",
                "errors": [{"field": "settings.reply_to", "message": "bad address"}],
            },
            InvalidRequest,
        ),
    ],
)
async def test_errors_map_onto_the_core_categories(running: Running, status, body, category):
    _, credentials, _ = await connect(running)
    fault = {"path": "/us6.api.mailchimp.com/3.0/ping", "status": status}
    if body is not None:
        fault["body"] = body
    await running.control("POST", "faults", fault)
    with pytest.raises(category) as caught:
        await running.connector.health_check(credentials)
    assert caught.value.http_status == status
    if status == 400:
        assert [e.field for e in caught.value.errors] == ["settings.reply_to"]
    if status == 403:
        assert caught.value.platform_code == "Wrong Datacenter"


async def test_never_more_than_ten_connections_per_key(running: Running):
    _, credentials, _ = await connect(running)
    await running.control(
        "POST",
        "faults",
        {"path": "/us6.api.mailchimp.com/3.0/ping", "delayMs": 150, "count": 30},
    )
    results = await asyncio.gather(
        *(running.connector.health_check(credentials) for _ in range(30))
    )
    assert all(r.ok for r in results)
    peaks = (await running.state())["peakConnections"]
    assert max(peaks.values()) == 10


async def test_oauth_connection_finds_its_data_centre(running: Running):
    connector = running.connector
    url = connector.oauth.authorization_url(
        redirect_uri="https://gw.example/cb", state="s", code_verifier=None, scopes=()
    )
    routed = url.replace("https://", f"{running.root}/", 1) + "&login_as=freebie"
    async with running.http.get(routed, allow_redirects=False) as r:
        code = r.headers["Location"].split("code=")[1].split("&")[0]
    token = await connector.oauth.exchange_code(
        code, redirect_uri="https://gw.example/cb", code_verifier=None
    )
    authorization = await connector.finish_authorization(token)
    assert authorization.external_user_id == FREEBIE.id
    assert authorization.token.expires_at is None and authorization.token.refresh_token is None
    assert authorization.metadata["auth"] == "oauth2"
    assert authorization.metadata["apiEndpoint"] == "https://us19.api.mailchimp.com"
    credentials = Credentials(
        connection_id="c",
        platform="mailchimp",
        access_token=Secret(token.access_token),
        metadata=dict(authorization.metadata),
    )
    accounts = await connector.list_accounts(credentials)
    assert [a.name for a in accounts] == ["Freebie List"]
    calls = await running.journal("/us19.api.mailchimp.com/3.0/lists")
    assert calls[0]["headers"]["authorization"].startswith("Bearer sha256:")

"""Mailchimp's official client (mailchimp-marketing), with only its host changed, against the
sandbox: auth and data centres, audiences, members, batches, campaigns, actions, reports."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from mailchimp_marketing.api_client import ApiClientError

from gateway import clock
from gateway.sandbox import WebhookTargets
from plugins.mailchimp.sandbox_state import subscriber_hash

from .conftest import ACME, DISABLED, FREEBIE, Standalone, call

LIST = "a1b2c3d4e5"


def problem(error: ApiClientError) -> dict:
    # The client reads only application/json bodies; problem+json arrives as text.
    return json.loads(error.text)


def next_quarter(minutes_ahead: int = 60) -> datetime:
    when = clock.now() + timedelta(minutes=minutes_ahead)
    return when.replace(minute=(when.minute // 15) * 15, second=0, microsecond=0) + timedelta(
        minutes=15
    )


async def ready_campaign(client, list_id: str = LIST, **settings) -> dict:
    body = {
        "type": "regular",
        "recipients": {"list_id": list_id},
        "settings": {
            "subject_line": "Spring news",
            "title": "Spring 2026",
            "from_name": "Acme",
            "reply_to": "news@acme.example",
            **settings,
        },
    }
    campaign = await call(client.campaigns.create, body)
    await call(client.campaigns.set_content, campaign["id"], {"html": "<p>Hello</p>"})
    return campaign


async def test_api_keys_reach_their_data_centre_only(standalone: Standalone):
    client = standalone.sdk(api_key=ACME.api_key)
    assert await call(client.ping.get) == {"health_status": "Everything's Chimpy!"}
    root = await call(client.root.get_root)
    assert (root["account_id"], root["pricing_plan_type"]) == (ACME.id, "monthly")

    wrong_dc = standalone.sdk(api_key=ACME.api_key, server="us19")
    with pytest.raises(ApiClientError) as caught:
        await call(wrong_dc.ping.get)
    assert caught.value.status_code == 403
    assert problem(caught.value)["title"] == "Wrong Datacenter"

    unknown = standalone.sdk(api_key="ffffffffffffffffffffffffffffffff-us6")
    with pytest.raises(ApiClientError) as caught:
        await call(unknown.ping.get)
    assert (caught.value.status_code, problem(caught.value)["title"]) == (401, "API Key Invalid")

    disabled = standalone.sdk(api_key=DISABLED.api_key)
    with pytest.raises(ApiClientError) as caught:
        await call(disabled.ping.get)
    assert (caught.value.status_code, problem(caught.value)["title"]) == (403, "User Disabled")


async def test_errors_are_problem_documents(standalone: Standalone):
    async with standalone.http.get(f"{standalone.root}/us6.api.mailchimp.com/3.0/ping") as r:
        assert r.status == 401
        assert r.content_type == "application/problem+json"
        body = await r.json(content_type=None)
        assert body["title"] == "API Key Missing"
        assert set(body) >= {"type", "title", "status", "detail", "instance"}
        assert r.headers["X-Request-Id"] == body["instance"]
        assert "ProblemDetailDocument" in r.headers["Link"]


async def test_audiences_and_member_upsert_by_hash(standalone: Standalone):
    client = standalone.sdk(api_key=ACME.api_key)
    lists = await call(client.lists.get_all_lists)
    assert {a["id"] for a in lists["lists"]} == {"a1b2c3d4e5", "f6e5d4c3b2"}
    member_hash = subscriber_hash("Jane@Example.com")
    body = {"email_address": "Jane@Example.com", "status_if_new": "subscribed"}
    created = await call(client.lists.set_list_member, LIST, member_hash, body)
    assert (created["id"], created["status"]) == (member_hash, "subscribed")
    again = await call(
        client.lists.set_list_member,
        LIST,
        member_hash,
        {**body, "merge_fields": {"FNAME": "Jane"}},
    )
    assert again["merge_fields"] == {"FNAME": "Jane"}
    await call(
        client.lists.update_list_member_tags,
        LIST,
        member_hash,
        {"tags": [{"name": "vip", "status": "active"}]},
    )
    tags = await call(client.lists.get_list_member_tags, LIST, member_hash)
    assert [t["name"] for t in tags["tags"]] == ["vip"]
    with pytest.raises(ApiClientError) as caught:  # the hash must be the address's
        await call(client.lists.set_list_member, LIST, "0" * 32, body)
    assert problem(caught.value)["errors"][0]["field"] == "email_address"
    with pytest.raises(ApiClientError) as caught:
        await call(
            client.lists.add_list_member,
            LIST,
            {"email_address": "jane@example.com", "status": "subscribed"},
        )
    assert problem(caught.value)["title"] == "Member Exists"
    await call(client.lists.delete_list_member, LIST, member_hash)
    members = await call(client.lists.get_list_members_info, LIST)
    assert members["members"] == []

    result = await call(
        client.lists.batch_list_members,
        LIST,
        {
            "members": [
                {"email_address": "a@example.com", "status": "subscribed"},
                {"email_address": "not-an-address", "status": "subscribed"},
            ],
            "update_existing": True,
        },
    )
    assert (result["total_created"], result["error_count"]) == (1, 1)
    assert result["errors"][0]["email_address"] == "not-an-address"


async def test_batches_run_later_and_leave_a_results_archive(standalone: Standalone):
    client = standalone.sdk(api_key=ACME.api_key)
    member_hash = subscriber_hash("op@example.com")
    operations = [
        {
            "method": "PUT",
            "path": f"/lists/{LIST}/members/{member_hash}",
            "operation_id": "op-1",
            "body": json.dumps({"email_address": "op@example.com", "status_if_new": "subscribed"}),
        },
        {"method": "PUT", "path": f"/lists/nope/members/{member_hash}", "operation_id": "op-2"},
    ]
    batch = await call(client.batches.start, {"operations": operations})
    assert (batch["status"], batch["total_operations"]) == ("pending", 2)
    await standalone.advance(10)
    done = await call(client.batches.status, batch["id"])
    assert (done["status"], done["finished_operations"], done["errored_operations"]) == (
        "finished",
        2,
        1,
    )
    url = urlsplit(done["response_body_url"])
    assert url.netloc == "mailchimp-api-batch.s3.amazonaws.com"
    async with standalone.http.get(f"{standalone.root}/{url.netloc}{url.path}") as r:
        raw = await r.read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as archive:
        results = json.load(archive.extractfile(archive.getmembers()[0]))
    assert [(r["operation_id"], r["status_code"]) for r in results] == [
        ("op-1", 200),
        ("op-2", 404),
    ]
    member = await call(client.lists.get_list_member, LIST, member_hash)
    assert member["status"] == "subscribed"


async def test_campaign_life_cycle_and_reports(standalone: Standalone):
    client = standalone.sdk(api_key=ACME.api_key)
    campaign = await ready_campaign(client)
    assert campaign["status"] == "save"
    checklist = await call(client.campaigns.get_send_checklist, campaign["id"])
    assert checklist["is_ready"] is True
    sent = await call(
        client.campaigns.send_test_email,
        campaign["id"],
        {"test_emails": ["qa@acme.example"], "send_type": "html"},
    )
    assert sent.status_code == 204

    with pytest.raises(ApiClientError) as caught:  # not on a quarter hour
        when = next_quarter() + timedelta(minutes=7)
        await call(client.campaigns.schedule, campaign["id"], {"schedule_time": when.isoformat()})
    assert "quarter-hour" in problem(caught.value)["errors"][0]["message"]
    when = next_quarter()
    scheduled = await call(
        client.campaigns.schedule, campaign["id"], {"schedule_time": when.isoformat()}
    )
    assert scheduled.status_code == 204
    assert (await call(client.campaigns.get, campaign["id"]))["status"] == "schedule"
    with pytest.raises(ApiClientError) as caught:
        await call(client.campaigns.remove, campaign["id"])
    assert caught.value.status_code == 400
    assert (await call(client.campaigns.unschedule, campaign["id"])).status_code == 204
    assert (await call(client.campaigns.get, campaign["id"]))["status"] == "save"

    assert (await call(client.campaigns.send, campaign["id"])).status_code == 204
    assert (await call(client.campaigns.get, campaign["id"]))["status"] == "sending"
    first = await call(client.reports.get_campaign_report, campaign["id"])
    assert first["emails_sent"] == 1000 and first["opens"]["unique_opens"] == 0
    await standalone.advance(6 * 3600)
    later = await call(client.reports.get_campaign_report, campaign["id"])
    assert (await call(client.campaigns.get, campaign["id"]))["status"] == "sent"
    assert later["opens"]["unique_opens"] > 0 and later["clicks"]["unique_clicks"] > 0
    assert 0 < later["opens"]["open_rate"] < 1
    with pytest.raises(ApiClientError) as caught:
        await call(client.campaigns.remove, campaign["id"])
    assert "cannot be deleted" in problem(caught.value)["detail"]

    draft = await ready_campaign(client)
    assert (await call(client.campaigns.remove, draft["id"])).status_code == 204


async def test_a_scheduled_campaign_goes_out_when_the_clock_reaches_it(standalone: Standalone):
    client = standalone.sdk(api_key=ACME.api_key)
    campaign = await ready_campaign(client)
    when = next_quarter()
    await call(client.campaigns.schedule, campaign["id"], {"schedule_time": when.isoformat()})
    await standalone.advance((when - clock.now()).total_seconds() + 120)
    assert (await call(client.campaigns.get, campaign["id"]))["status"] == "sent"


async def test_free_plans_cannot_schedule_and_unready_campaigns_cannot_send(
    standalone: Standalone,
):
    client = standalone.sdk(api_key=FREEBIE.api_key)
    campaign = await ready_campaign(client, "0f9e8d7c6b")
    with pytest.raises(ApiClientError) as caught:
        await call(
            client.campaigns.schedule, campaign["id"], {"schedule_time": next_quarter().isoformat()}
        )
    assert "paid plans" in problem(caught.value)["detail"]
    bare = await call(
        client.campaigns.create, {"type": "regular", "recipients": {"list_id": "0f9e8d7c6b"}}
    )
    with pytest.raises(ApiClientError) as caught:
        await call(client.campaigns.send, bare["id"])
    assert problem(caught.value)["detail"] == "Your Campaign is not ready to send."


async def test_template_content(standalone: Standalone):
    client = standalone.sdk(api_key=ACME.api_key)
    campaign = await ready_campaign(client)
    content = await call(
        client.campaigns.set_content,
        campaign["id"],
        {"template": {"id": 1001, "sections": {"body": "<p>Hi</p>"}}},
    )
    assert '<div mc:edit="body"><p>Hi</p></div>' in content["html"]
    with pytest.raises(ApiClientError):
        await call(client.campaigns.set_content, campaign["id"], {"template": {"id": 9}})


async def test_oauth_tokens_never_expire_and_metadata_names_the_data_centre(
    standalone: Standalone,
):
    redirect = "https://app.example.com/cb"
    login = f"{standalone.root}/login.mailchimp.com/oauth2"
    params = {
        "response_type": "code",
        "client_id": "mailchimp-sandbox-client",
        "redirect_uri": redirect,
        "state": "s1",
        "login_as": "freebie",
    }
    async with standalone.http.get(f"{login}/authorize", params=params, allow_redirects=False) as r:
        assert r.status == 302
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "client_id": "mailchimp-sandbox-client",
        "client_secret": "mailchimp-sandbox-secret",
        "redirect_uri": redirect,
        "code": code,
    }
    async with standalone.http.post(f"{login}/token", data=form) as r:
        token = await r.json()
    assert (token["expires_in"], token["scope"]) == (0, None)
    headers = {"Authorization": f"OAuth {token['access_token']}"}
    async with standalone.http.get(f"{login}/metadata", headers=headers) as r:
        meta = await r.json()
    assert (meta["dc"], meta["api_endpoint"]) == ("us19", "https://us19.api.mailchimp.com")
    await standalone.advance(5 * 365 * 86400)
    client = standalone.sdk(access_token=token["access_token"], server=meta["dc"])
    assert (await call(client.root.get_root))["account_id"] == FREEBIE.id
    async with standalone.http.post(f"{login}/token", data=form) as r:  # codes are single use
        assert (r.status, (await r.json())["error"]) == (400, "invalid_grant")


async def test_more_than_ten_simultaneous_connections_get_429(standalone: Standalone):
    status, _ = await standalone.control(
        "POST", "faults", {"path": "/us6.api.mailchimp.com/3.0/ping", "delayMs": 400, "count": 11}
    )
    assert status == 201
    auth = {"Authorization": aiohttp.encode_basic_auth("user", ACME.api_key)}

    async def ping() -> int:
        async with standalone.http.get(
            f"{standalone.root}/us6.api.mailchimp.com/3.0/ping", headers=auth
        ) as r:
            return r.status

    statuses = sorted(await asyncio.gather(*(ping() for _ in range(11))))
    assert statuses == [200] * 10 + [429]
    _, state = await standalone.control("GET", "state")
    assert max(state["peakConnections"].values()) == 10


async def test_webhooks_are_validated_then_delivered_as_forms(
    standalone: Standalone, aiohttp_server
):
    received: list[tuple[str, dict]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.method, dict(await request.post())))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/hook", hook)
    target = await aiohttp_server(app)
    url = f"http://{target.host}:{target.port}/hook?secret=abc"
    standalone.sandbox.webhook_targets = WebhookTargets.only(url)  # `--webhook-target`
    client = standalone.sdk(api_key=ACME.api_key)
    created = await call(
        client.lists.create_list_webhook, LIST, {"url": url, "events": {"subscribe": True}}
    )
    assert created["url"] == url and received == [("GET", {})]
    with pytest.raises(ApiClientError):  # a URL that does not answer 200 is refused
        await call(
            client.lists.create_list_webhook,
            LIST,
            {"url": f"http://{target.host}:{target.port}/missing"},
        )
    status, answer = await standalone.control(
        "POST", "webhooks", {"event": "subscribe", "target": url}
    )
    assert (status, answer["status"]) == (200, 200)
    method, form = received[-1]
    assert method == "POST"
    assert form["type"] == "subscribe" and form["data[list_id]"] == LIST
    assert form["data[merges][EMAIL]"] == "jane@example.com"


async def test_the_rest_of_the_surface_through_the_client(standalone: Standalone):
    client = standalone.sdk(api_key=ACME.api_key)
    made = await call(
        client.lists.create_list,
        {"name": "Fresh", "campaign_defaults": {"from_name": "F", "from_email": "f@acme.example"}},
    )
    assert (await call(client.lists.get_list, made["id"]))["name"] == "Fresh"
    campaign = await ready_campaign(client, made["id"])
    updated = await call(
        client.campaigns.update, campaign["id"], {"settings": {"subject_line": "Changed"}}
    )
    assert updated["settings"]["subject_line"] == "Changed"
    assert (await call(client.campaigns.get_content, campaign["id"]))["html"] == "<p>Hello</p>"
    copy = await call(client.campaigns.replicate, campaign["id"])
    assert copy["id"] != campaign["id"] and copy["settings"]["subject_line"] == "Changed"
    listed = await call(client.campaigns.list)
    assert {c["id"] for c in listed["campaigns"]} == {campaign["id"], copy["id"]}
    await call(client.campaigns.send, copy["id"])
    reports = await call(client.reports.get_all_campaign_reports)
    assert [r["id"] for r in reports["reports"]] == [copy["id"]]
    with pytest.raises(ApiClientError) as caught:  # a draft has no report yet
        await call(client.reports.get_campaign_report, campaign["id"])
    assert caught.value.status_code == 404

    member_hash = subscriber_hash("gone@example.com")
    await call(
        client.lists.add_list_member,
        made["id"],
        {"email_address": "gone@example.com", "status": "subscribed"},
    )
    await call(client.lists.delete_list_member_permanent, made["id"], member_hash)
    with pytest.raises(ApiClientError) as caught:
        await call(client.lists.get_list_member, made["id"], member_hash)
    assert caught.value.status_code == 404

    batch = await call(
        client.batches.start, {"operations": [{"method": "GET", "path": "/lists/x/members"}]}
    )
    assert [b["id"] for b in (await call(client.batches.list))["batches"]] == [batch["id"]]
    assert (await call(client.batches.delete_request, batch["id"])).status_code == 204

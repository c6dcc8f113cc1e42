"""Inbound platform webhooks for a platform without signatures: a secret URL per connection.

Each connection's URL takes events about that connection's accounts only; every wrong URL
(guessed, forged, revoked) is refused alike; the token never reaches a log; and rotating the
vault's keys leaves live URLs working. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import secrets
import types
from urllib.parse import parse_qs

from sqlalchemy import select
from structlog.testing import capture_logs

from gateway import (
    AccountInfo,
    ApiKeySpec,
    Authorization,
    Capabilities,
    Connector,
    Event,
    PlatformEvent,
    TokenSet,
    WebhookDelivery,
    admin,
    hookimpl,
    platform_webhook_url,
)
from gateway.connections.service import delete_connection, get_connection, save_connection
from gateway.db.models import PlatformWebhookEventRow, WebhookUrlRow
from gateway.web.app import create_app

from ...conftest import TEST_KEY, settings_for

HANDLED: list[tuple[str | None, PlatformEvent]] = []
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NEW_KEY = "test2:" + base64.urlsafe_b64encode(b"n" * 32).decode()


class FormHooks(Connector):
    """Like Mailchimp: unsigned form posts, a validation GET that wants a plain 200."""

    platform = "formhooks"
    auth = ApiKeySpec()
    capabilities = Capabilities(webhooks=True)
    webhook_url_secret = True

    def webhook_handshake(self, query):
        return ""

    def verify_webhook(self, delivery: WebhookDelivery) -> bool:
        return True  # the core has checked the URL secret already

    def parse_webhook(self, delivery: WebhookDelivery) -> list[PlatformEvent]:
        form = {k: v[0] for k, v in parse_qs(delivery.body.decode()).items()}
        key = f"{form['type']}:{form['fired_at']}:{form['data[email]']}"
        return [PlatformEvent(key=key, kind=form["type"], external_id=form["list"], data=form)]

    async def handle_webhook(self, event, context) -> None:
        HANDLED.append((context.connection.id if context.connection else None, event))
        if event.kind == "stray":  # a buggy plugin telling a tenant the URL is not for
            await context.emit(Event("formhooks.stray", tenant_id=event.data["to"]))


PLUGIN = types.SimpleNamespace(
    register_connectors=hookimpl(lambda registry: registry.add(FormHooks))
)


def form(audience: str, email: str = "a@example.com") -> str:
    return (
        f"type=unsubscribe&fired_at=2026-11-26+01%3A00%3A00&list={audience}"
        f"&data%5Bemail%5D={email.replace('@', '%40')}"
    )


async def connect(gateway, tenant: str, user: str, audience: str) -> str:
    issued = await admin.create_tenant(gateway, tenant)
    saved = await save_connection(
        gateway,
        tenant_id=issued.tenant_id,
        platform="formhooks",
        authorization=Authorization(user, user, TokenSet(access_token=f"key-{user}")),
        accounts=[AccountInfo("list", audience, audience)],
    )
    return saved.connection.id


async def path_of(gateway, connection_id: str) -> str:
    url = await platform_webhook_url(gateway, connection_id)
    assert url.startswith(f"{gateway.settings.base_url}/webhooks/formhooks/")
    return url.removeprefix(gateway.settings.base_url)


def gateway_with(make_gateway, tmp_path, database_url, *keys: str):
    settings = settings_for(tmp_path, database_url, vault={"keys": list(keys)})
    return make_gateway((("formhooks", PLUGIN),), use_settings=settings)


async def test_each_connection_has_its_own_url_for_its_own_accounts(
    aiohttp_client, make_gateway, tmp_path, database_url
):
    HANDLED.clear()
    gateway = gateway_with(make_gateway, tmp_path, database_url, TEST_KEY)
    client = await aiohttp_client(create_app(gateway))
    conn_a = await connect(gateway, "a", "user-a", "list-a")
    conn_b = await connect(gateway, "b", "user-b", "list-b")
    # Two first uses at once agree on one URL.
    path_a, again = await asyncio.gather(path_of(gateway, conn_a), path_of(gateway, conn_a))
    path_b = await path_of(gateway, conn_b)
    assert path_a == again == await path_of(gateway, conn_a) != path_b
    token_a = path_a.rsplit("/", 1)[1]
    assert len(token_a) >= 43  # 256 random bits

    # B knows its own URL; an event about A's audience sent there is refused and goes nowhere,
    # exactly as one about an audience nobody has.
    refusals = []
    for audience in ("list-a", "list-nobody"):
        response = await client.post(path_b, data=form(audience), headers=FORM)
        refusals.append((response.status, (await response.json())["detail"]))
    assert refusals[0][0] == 403 and refusals[0] == refusals[1]

    # Own events are taken, once each, and reach only the URL's connection.
    for expected in ({"received": 1, "duplicates": 0}, {"received": 0, "duplicates": 1}):
        response = await client.post(path_a, data=form("list-a"), headers=FORM)
        assert response.status == 200 and await response.json() == expected
    assert [(conn, e.external_id) for conn, e in HANDLED] == [(conn_a, "list-a")]
    async with gateway.session() as session:
        rows = list(await session.scalars(select(PlatformWebhookEventRow)))
        stored = list(await session.scalars(select(WebhookUrlRow)))
    assert [(r.platform, r.external_id) for r in rows] == [("formhooks", "list-a")]
    # The database holds the token's hash and a sealed copy, never the token.
    assert all(token_a not in repr(vars(row)) for row in stored)


async def test_every_wrong_url_is_refused_alike(
    aiohttp_client, make_gateway, tmp_path, database_url
):
    HANDLED.clear()
    gateway = gateway_with(make_gateway, tmp_path, database_url, TEST_KEY)
    client = await aiohttp_client(create_app(gateway))
    conn_a = await connect(gateway, "a", "user-a", "list-a")
    conn_b = await connect(gateway, "b", "user-b", "list-b")
    path_a, path_b = await path_of(gateway, conn_a), await path_of(gateway, conn_b)
    token_a = path_a.rsplit("/", 1)[1]
    row = await get_connection(gateway, conn_b)
    await delete_connection(gateway, row)  # revoked: its URL dies with it
    forged = secrets.token_urlsafe(32)  # well-formed, never issued
    answers = set()
    for path in (
        f"/webhooks/formhooks/{forged}",
        "/webhooks/formhooks/guess",
        f"/webhooks/formhooks/{token_a[:-1]}x",
        path_b,
    ):
        response = await client.post(path, data=form("list-a"), headers=FORM)
        answers.add((response.status, await response.text()))
        assert (await client.get(path)).status == 401
    assert len(answers) == 1 and next(iter(answers))[0] == 401
    bare = await client.post("/webhooks/formhooks", data=form("list-a"), headers=FORM)
    assert bare.status == 401
    assert HANDLED == []
    assert (await client.get(path_a)).status == 200  # the validation GET


async def test_the_token_never_reaches_the_logs(aiohttp_client, make_gateway, tmp_path):
    gateway = gateway_with(make_gateway, tmp_path, None, TEST_KEY)
    client = await aiohttp_client(create_app(gateway))
    path_a = await path_of(gateway, await connect(gateway, "a", "user-a", "list-a"))
    token = path_a.rsplit("/", 1)[1]
    with capture_logs() as logs:
        await client.get(path_a)
        await client.post(path_a, data=form("list-a"), headers=FORM)
        await client.post(path_a, data=form("list-other"), headers=FORM)
    requests = [e for e in logs if e["event"] == "http.request"]
    assert [e["path"] for e in requests] == ["/webhooks/formhooks/[redacted]"] * 3
    assert token not in repr(logs)


async def test_rotating_the_vault_keys_keeps_live_urls(
    aiohttp_client, make_gateway, tmp_path, database_url
):
    HANDLED.clear()
    before = gateway_with(make_gateway, tmp_path, database_url, TEST_KEY)
    await before.start()
    conn_a = await connect(before, "a", "user-a", "list-a")
    path_a = await path_of(before, conn_a)
    await before.stop()

    # A new key first in the ring, every secret re-sealed under it, then the old key retired.
    rotating = gateway_with(make_gateway, tmp_path, database_url, NEW_KEY, TEST_KEY)
    await rotating.start()
    report = await admin.rotate_vault(rotating)
    await rotating.stop()
    assert report.remaining == 0 and report.resealed >= 1

    after = gateway_with(make_gateway, tmp_path, database_url, NEW_KEY)
    client = await aiohttp_client(create_app(after))
    assert await path_of(after, conn_a) == path_a
    response = await client.post(path_a, data=form("list-a"), headers=FORM)
    assert response.status == 200 and await response.json() == {"received": 1, "duplicates": 0}
    assert [conn for conn, _ in HANDLED] == [conn_a]


async def test_a_plugin_cannot_emit_to_another_tenant_from_a_secret_url(
    aiohttp_client, make_gateway, tmp_path
):
    HANDLED.clear()
    seen: list[Event] = []
    observer = types.SimpleNamespace(track_event=hookimpl(lambda event: seen.append(event)))
    settings = settings_for(tmp_path)
    gateway = make_gateway((("formhooks", PLUGIN), ("observer", observer)), use_settings=settings)
    client = await aiohttp_client(create_app(gateway))
    path_a = await path_of(gateway, await connect(gateway, "a", "user-a", "list-a"))
    tenant_b = (
        await get_connection(gateway, await connect(gateway, "b", "user-b", "list-b"))
    ).tenant_id
    body = f"type=stray&fired_at=x&list=list-a&data%5Bemail%5D=a%40example.com&to={tenant_b}"
    response = await client.post(path_a, data=body, headers=FORM)
    assert response.status == 200  # the platform is answered; the plugin's error is kept
    assert not [e for e in seen if e.name == "formhooks.stray"]
    async with gateway.session() as session:
        (row,) = list(await session.scalars(select(PlatformWebhookEventRow)))
    assert "ForeignAccount" in (row.error or "")

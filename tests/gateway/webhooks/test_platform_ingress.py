"""Inbound platform webhooks for a platform without signatures: the secret URL is the check."""

from __future__ import annotations

import types
from urllib.parse import parse_qs

from sqlalchemy import select

from gateway import (
    ApiKeySpec,
    Capabilities,
    Connector,
    PlatformEvent,
    WebhookDelivery,
    hookimpl,
)
from gateway.db.models import PlatformWebhookEventRow
from gateway.web.app import create_app
from gateway.webhooks.ingress import url_secret

HANDLED: list[PlatformEvent] = []


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
        return [PlatformEvent(key=key, kind=form["type"], data=form)]

    async def handle_webhook(self, event, context) -> None:
        HANDLED.append(event)


PLUGIN = types.SimpleNamespace(
    register_connectors=hookimpl(lambda registry: registry.add(FormHooks))
)
FORM = "type=unsubscribe&fired_at=2026-11-26+01%3A00%3A00&data%5Bemail%5D=a%40example.com"


async def test_deliveries_need_the_secret_url_and_count_once(aiohttp_client, make_gateway):
    HANDLED.clear()
    gateway = make_gateway((("formhooks", PLUGIN),))
    client = await aiohttp_client(create_app(gateway))
    secret = url_secret(gateway, "formhooks")
    assert len(secret) >= 32 and secret == url_secret(gateway, "formhooks")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for path in ("/webhooks/formhooks", "/webhooks/formhooks/" + "x" * len(secret)):
        response = await client.post(path, data=FORM, headers=form)
        assert response.status == 401
    assert (await client.get("/webhooks/formhooks")).status == 401
    assert (await client.get(f"/webhooks/formhooks/{secret}")).status == 200
    for expected in ({"received": 1, "duplicates": 0}, {"received": 0, "duplicates": 1}):
        response = await client.post(f"/webhooks/formhooks/{secret}", data=FORM, headers=form)
        assert response.status == 200 and await response.json() == expected
    assert [event.kind for event in HANDLED] == ["unsubscribe"]
    async with gateway.session() as session:
        rows = list(await session.scalars(select(PlatformWebhookEventRow)))
    assert [(r.platform, r.kind) for r in rows] == [("formhooks", "unsubscribe")]

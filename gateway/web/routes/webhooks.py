"""Client webhook subscriptions: create (the signing secret is shown once), list, delete."""

from __future__ import annotations

import functools
import json
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import func, select

from ...db.models import TenantRow, WebhookEndpointRow
from ...db.repositories import SecretRepository
from ...errors import BadRequest, Conflict, FieldProblem, ResourceNotFound
from ...ids import new_id
from ...timefmt import rfc3339
from ...webhooks.outbox import EVENTS
from ..keys import GATEWAY, principal_of
from ..spec import (
    ApiSpec,
    Schema,
    json_body,
    json_response,
    list_schema,
    path_param,
    problem,
    record,
)

# A port is 0 to 65535 (the handler refuses others, so the schema must not promise them).
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
CREATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "events"],
    "properties": {
        "url": {
            "type": "string",
            "maxLength": 2000,
            "pattern": f"^https?://([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:{_PORT})?(/[!-~]*)?$",
            "description": (
                "Where events are POSTed. Must reach a public address: loopback, private and "
                "unique-local ones only where the operator allows them "
                "(`security.allow_private_targets`, on by default in sandbox mode; "
                "`security.allowed_hosts`), link-local and cloud metadata ones never. Checked "
                "here as far as the URL shows, and again on every delivery once the name is "
                "resolved. Redirects are not followed."
            ),
        },
        "events": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": sorted(EVENTS)},
        },
    },
}
ENDPOINT = record(
    "WebhookEndpoint",
    {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string"}},
        "createdAt": {"type": "string"},
        "secret": {"type": "string", "description": "returned once, on creation"},
    },
    required=["id", "url", "events", "createdAt"],
)
ID = path_param("endpointId")
SECRET_PURPOSE = "webhook_signing_secret"


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise BadRequest(
            "url is not a usable http(s) URL",
            errors=[FieldProblem("url", "invalid", "use e.g. https://app.example.com/hooks")],
        )


def endpoint_json(row: WebhookEndpointRow) -> dict:
    return {
        "id": row.id,
        "url": row.url,
        "events": list(row.events),
        "createdAt": rfc3339(row.created_at),
    }


@functools.cache  # one schema object per set of events, so its validator is built once
def create_schema(events: frozenset[str]) -> dict:
    schema = json.loads(json.dumps(CREATE))
    schema["properties"]["events"]["items"] = {"enum": sorted(events)}
    return Schema("WebhookEndpointCreate", schema)


def install(spec: ApiSpec, gateway) -> None:
    """The subscription schema lists this gateway's events: its platforms may add their own."""
    tags = ("webhooks",)
    create = create_schema(gateway.client_events)
    spec.route(
        "POST",
        "/api/webhook-endpoints",
        summary="Subscribe a URL to events",
        tags=tags,
        request_body={"required": True, "content": {"application/json": {"schema": create}}},
        responses={
            201: json_response(ENDPOINT, "Created; the secret is shown this once"),
            409: problem("The tenant has `webhooks.max_endpoints_per_tenant` endpoints already"),
            422: problem("The URL's target is refused (field `url`)"),
        },
    )(create_endpoint)
    spec.route(
        "GET",
        "/api/webhook-endpoints",
        summary="The tenant's subscriptions",
        tags=tags,
        responses={200: json_response(list_schema(ENDPOINT))},
    )(list_endpoints)
    spec.route(
        "DELETE",
        "/api/webhook-endpoints/{endpointId}",
        summary="Unsubscribe",
        tags=tags,
        parameters=(ID,),
        responses={200: json_response(ENDPOINT), 404: problem("No such endpoint")},
    )(delete_endpoint)


async def create_endpoint(request: web.Request) -> web.Response:
    gateway = request.config_dict[GATEWAY]
    body = await json_body(request, create_schema(gateway.client_events))
    _check_url(body["url"])
    gateway.guard.policy.check_url(body["url"], field="url")
    tenant_id = principal_of(request).tenant_id
    secret = "whsec_" + secrets.token_urlsafe(32)
    cap = gateway.settings.webhooks.max_endpoints_per_tenant
    async with gateway.transaction() as session:
        # The tenant's row locked (PostgreSQL; SQLite has one writer), so two creations at
        # once cannot both see room for one more.
        await session.execute(
            select(TenantRow.id).where(TenantRow.id == tenant_id).with_for_update()
        )
        active = await session.scalar(
            select(func.count())
            .select_from(WebhookEndpointRow)
            .where(WebhookEndpointRow.tenant_id == tenant_id, WebhookEndpointRow.active.is_(True))
        )
        if active >= cap:
            raise Conflict(
                f"this tenant has {active} webhook endpoints, the most allowed "
                f"({cap}, webhooks.max_endpoints_per_tenant); delete one first"
            )
        sealed = await SecretRepository(session, gateway.vault).store(
            secret, purpose=SECRET_PURPOSE, tenant_id=tenant_id
        )
        row = WebhookEndpointRow(
            id=new_id("whk"),
            tenant_id=tenant_id,
            url=body["url"],
            events=body["events"],
            secret_id=sealed.id,
        )
        session.add(row)
        await session.flush()
    return web.json_response({**endpoint_json(row), "secret": secret}, status=201)


async def list_endpoints(request: web.Request) -> web.Response:
    async with request.config_dict[GATEWAY].session() as session:
        rows = (
            (
                await session.execute(
                    select(WebhookEndpointRow)
                    .where(
                        WebhookEndpointRow.tenant_id == principal_of(request).tenant_id,
                        WebhookEndpointRow.active.is_(True),
                    )
                    .order_by(WebhookEndpointRow.id)
                )
            )
            .scalars()
            .all()
        )
    return web.json_response({"data": [endpoint_json(r) for r in rows]})


async def delete_endpoint(request: web.Request) -> web.Response:
    async with request.config_dict[GATEWAY].transaction() as session:
        row = await session.get(WebhookEndpointRow, request.match_info["endpointId"])
        if row is None or row.tenant_id != principal_of(request).tenant_id or not row.active:
            raise ResourceNotFound(f"no webhook endpoint {request.match_info['endpointId']}")
        row.active = False
    return web.json_response(endpoint_json(row))

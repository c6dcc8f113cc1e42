"""Inbound platform webhooks: the subscription handshake, and signed event deliveries."""

from __future__ import annotations

from aiohttp import web

from ...errors import Forbidden, ResourceNotFound, Unauthenticated
from ...types import WebhookDelivery
from ...webhooks.ingress import ConnectionInfo, receive
from ...webhooks.secret_urls import connection_of
from ..keys import GATEWAY
from ..spec import ApiSpec, Schema, id_string, json_response, path_param, problem

RECEIVED = Schema(
    "WebhookReceipt",
    {
        "type": "object",
        "required": ["received", "duplicates"],
        "properties": {"received": {"type": "integer"}, "duplicates": {"type": "integer"}},
    },
)
PLATFORM = {**path_param("platform"), "schema": id_string(32)}
SECRET = {**path_param("secret"), "schema": id_string(100)}
TEXT = {"description": "The platform's challenge", "content": {"text/plain": {"schema": {}}}}


def install(spec: ApiSpec) -> None:
    tags = ("platform webhooks",)
    for path, params, get, post in (
        ("/webhooks/{platform}", (PLATFORM,), handshake, deliver),
        ("/webhooks/{platform}/{secret}", (PLATFORM, SECRET), handshake_secret, deliver_secret),
    ):
        spec.route(
            "GET",
            path,
            summary="A platform's webhook subscription handshake",
            auth=False,
            tags=tags,
            parameters=params,
            responses={
                200: TEXT,
                401: problem("Unknown webhook URL (or this platform's come to a secret URL)"),
                403: problem("Handshake refused"),
                404: problem("Not found"),
            },
        )(get)
        spec.route(
            "POST",
            path,
            summary="A platform's event, checked with its signature scheme, processed once",
            auth=False,
            tags=tags,
            parameters=params,
            responses={
                200: json_response(RECEIVED),
                401: problem("Bad or missing signature, or unknown URL; nothing was stored"),
                403: problem("A secret URL's event about another account; nothing was stored"),
                404: problem("Not found"),
            },
        )(post)


async def _connector(request: web.Request, *, secret: str | None):
    """The platform's connector and, on a secret URL, the connection the URL belongs to."""
    gateway = request.config_dict[GATEWAY]
    platform = request.match_info["platform"]
    connector = gateway.connector(platform)
    if connector is None or not type(connector).capabilities.webhooks:
        raise ResourceNotFound(f"no webhooks for platform {platform!r}")
    if type(connector).webhook_url_secret and secret is None:
        raise Unauthenticated(f"{platform} webhooks are delivered to their secret URL only")
    connection = None
    if secret is not None:
        found = None
        if type(connector).webhook_url_secret:
            found = await connection_of(gateway, platform, secret)
        if found is None:  # one answer for every miss: guessed, forged, revoked, misplaced
            raise Unauthenticated("unknown webhook URL")
        connection = ConnectionInfo.of(found)
    return gateway, connector, connection


async def _handshake(request: web.Request, secret: str | None) -> web.Response:
    _, connector, _ = await _connector(request, secret=secret)
    answer = connector.webhook_handshake(request.query)
    if answer is None:
        raise Forbidden("the handshake does not match this gateway's subscription")
    return web.Response(text=answer, content_type="text/plain")


async def _deliver(request: web.Request, secret: str | None) -> web.Response:
    gateway, connector, connection = await _connector(request, secret=secret)
    delivery = WebhookDelivery(
        platform=request.match_info["platform"],
        method=request.method,
        headers=request.headers,
        query=request.query,
        body=await request.read(),
        url_secret=secret,
        connection_id=connection.id if connection else None,
    )
    # The signature is checked over the raw bytes before anything is parsed.
    if not connector.verify_webhook(delivery):
        raise Unauthenticated("the webhook signature is missing or wrong")
    received = await receive(gateway, connector, delivery, connection)
    return web.json_response({"received": received.new, "duplicates": received.duplicates})


async def handshake(request: web.Request) -> web.Response:
    return await _handshake(request, None)


async def handshake_secret(request: web.Request) -> web.Response:
    return await _handshake(request, request.match_info["secret"])


async def deliver(request: web.Request) -> web.Response:
    return await _deliver(request, None)


async def deliver_secret(request: web.Request) -> web.Response:
    return await _deliver(request, request.match_info["secret"])

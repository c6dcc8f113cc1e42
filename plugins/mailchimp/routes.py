"""Audience-contact routes under ``/api/plugins/mailchimp/``, scoped to the caller's tenant."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from gateway import (
    FieldProblem,
    ResourceNotFound,
    Unprocessable,
    current_gateway,
    owned_account,
    platform_webhook_url,
    read_json,
)

from . import members, webhooks
from .api import target_of
from .const import AUDIENCE, BATCH_MEMBERS_MAX, EMAIL

_EMAIL = {"type": "string", "minLength": 3, "maxLength": 254}
_TAGS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 100}}
_STATUS = {"enum": list(members.STATUSES)}
MEMBER_IN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {
        "email": _EMAIL,
        "status": _STATUS,
        "statusIfNew": _STATUS,
        "mergeFields": {"type": "object"},
        "tags": {**_TAGS, "maxItems": 50},
    },
}
MEMBER_OUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "MD5 of the lower-cased email"},
        "email": {"type": "string"},
        "status": {"type": "string"},
        "mergeFields": {"type": "object"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "lastChanged": {"type": ["string", "null"]},
    },
}
REMOVE_IN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {"email": _EMAIL, "permanent": {"type": "boolean", "default": False}},
}
TAGS_IN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {"email": _EMAIL, "add": _TAGS, "remove": _TAGS},
}
BATCH_IN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["members"],
    "properties": {
        "members": {
            "type": "array",
            "minItems": 1,
            "maxItems": BATCH_MEMBERS_MAX,
            "items": MEMBER_IN,
        },
        "updateExisting": {"type": "boolean", "default": True},
    },
}
BATCH_OUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "created": {"type": "array", "items": MEMBER_OUT},
        "updated": {"type": "array", "items": MEMBER_OUT},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


async def _audience(request: web.Request):
    """The caller's Mailchimp audience named in the path, its API target and the connector."""
    account_id = request.match_info["accountId"]
    account, credentials = await owned_account(request, account_id)
    if account.kind != AUDIENCE:
        raise ResourceNotFound(f"no Mailchimp audience {account_id}")
    connector = current_gateway(request).connector("mailchimp")
    if connector is None:
        raise ResourceNotFound("the Mailchimp plugin is not running")
    return account, target_of(credentials), connector.api


def _check_emails(*emails: tuple[str, str]) -> None:
    problems = [
        FieldProblem(field, "invalid", "use an email address")
        for field, email in emails
        if not EMAIL.match(email.strip())
    ]
    if problems:
        raise Unprocessable("Mailchimp would refuse these addresses", errors=problems)


async def upsert_member(request: web.Request) -> web.Response:
    body = await read_json(request, MEMBER_IN)
    _check_emails(("email", body["email"]))
    account, target, api = await _audience(request)
    return web.json_response(await members.upsert(api, target, account.external_id, body))


async def remove_member(request: web.Request) -> web.Response:
    body = await read_json(request, REMOVE_IN)
    _check_emails(("email", body["email"]))
    account, target, api = await _audience(request)
    permanent = bool(body.get("permanent"))
    await members.remove(api, target, account.external_id, body["email"], permanent=permanent)
    return web.json_response({"email": body["email"], "removed": True, "permanent": permanent})


async def tag_member(request: web.Request) -> web.Response:
    body = await read_json(request, TAGS_IN)
    _check_emails(("email", body["email"]))
    account, target, api = await _audience(request)
    answer = await members.tag(
        api, target, account.external_id, body["email"], body.get("add", []), body.get("remove", [])
    )
    return web.json_response(answer)


async def batch_members(request: web.Request) -> web.Response:
    body = await read_json(request, BATCH_IN)
    _check_emails(*((f"members.{i}.email", m["email"]) for i, m in enumerate(body["members"])))
    account, target, api = await _audience(request)
    answer = await members.batch(
        api, target, account.external_id, body["members"], update=body.get("updateExisting", True)
    )
    return web.json_response(answer)


WEBHOOK_OUT: dict[str, Any] = {
    "type": "object",
    "properties": {"webhookId": {"type": "string"}, "events": {"type": "object"}},
}


async def register_webhook(request: web.Request) -> web.Response:
    """Have Mailchimp send the audience's events to the connection's secret URL.

    Mailchimp checks the URL with a GET at once; deliveries then arrive as ``mailchimp.*``
    events for this connection only. The URL is never shown to the client (whoever sees the
    Mailchimp account sees it there, which is why it is good for this connection alone).
    Webhooks the audience has to this gateway's older URLs are removed: they no longer work.
    """
    account_id = request.match_info["accountId"]
    account, credentials = await owned_account(request, account_id)
    if account.kind != AUDIENCE:
        raise ResourceNotFound(f"no Mailchimp audience {account_id}")
    gateway = current_gateway(request)
    api = gateway.connector("mailchimp").api
    target = target_of(credentials)
    url = await platform_webhook_url(gateway, credentials.connection_id)
    ours = f"{URL(url).parent}/"
    hooks = await api.call(target, "GET", f"/lists/{account.external_id}/webhooks")
    for hook in hooks.get("webhooks") or []:
        if hook.get("url") == url:  # registered already: once is enough
            return web.json_response({"webhookId": hook.get("id"), "events": hook.get("events")})
        if str(hook.get("url", "")).startswith(ours):
            await api.call(target, "DELETE", f"/lists/{account.external_id}/webhooks/{hook['id']}")
    answer = await api.call(
        target,
        "POST",
        f"/lists/{account.external_id}/webhooks",
        json={
            "url": url,
            "events": dict.fromkeys(webhooks.EVENTS, True),
            "sources": {"user": True, "admin": True, "api": True},
        },
        idempotent=False,
    )
    return web.json_response({"webhookId": answer.get("id"), "events": answer.get("events")})


def register(registry) -> None:
    registry.add(
        "POST",
        "/audiences/{accountId}/webhook",
        register_webhook,
        summary="Have Mailchimp send this audience's events (mailchimp.*) to the gateway",
        response=WEBHOOK_OUT,
    )
    base = "/audiences/{accountId}/members"
    registry.add(
        "PUT",
        base,
        upsert_member,
        summary="Add or update a contact of a Mailchimp audience (by email)",
        body=MEMBER_IN,
        response=MEMBER_OUT,
    )
    registry.add(
        "POST",
        f"{base}/remove",
        remove_member,
        summary="Archive a contact, or erase it with permanent=true",
        body=REMOVE_IN,
    )
    registry.add(
        "POST",
        f"{base}/tags",
        tag_member,
        summary="Add and remove a contact's tags",
        body=TAGS_IN,
        response=MEMBER_OUT,
    )
    registry.add(
        "POST",
        f"{base}/batch",
        batch_members,
        summary=f"Add or update up to {BATCH_MEMBERS_MAX} contacts at once",
        body=BATCH_IN,
        response=BATCH_OUT,
    )

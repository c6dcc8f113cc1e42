"""Meta webhooks: the ``hub.*`` handshake, ``X-Hub-Signature-256``, events, and acting on them.

Meta does not number its events and redelivers for up to 36 hours, so each change's key is a
digest of its content (object, entry, time, field, value): a redelivery has the same key and
the core stores it once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from gateway import BadRequest, Event, PlatformEvent, WebhookContext, WebhookDelivery

from .const import REQUIRED_SCOPES

SANDBOX_VERIFY_TOKEN = "meta-sandbox-verify-token"


class MetaWebhooks:
    """The webhook half of the Meta connector (a mixin of ``MetaConnector``)."""

    def webhook_handshake(self, query) -> str | None:
        expected = self.context.settings.get("webhook_verify_token") or (
            SANDBOX_VERIFY_TOKEN if self.context.sandbox_mode else None
        )
        given = query.get("hub.verify_token", "")
        if (
            expected
            and query.get("hub.mode") == "subscribe"
            and hmac.compare_digest(given.encode(), expected.encode())
            and query.get("hub.challenge")
        ):
            return query["hub.challenge"]
        return None

    def verify_webhook(self, delivery: WebhookDelivery) -> bool:
        """HMAC-SHA256 of the raw body with the app secret, compared in constant time."""
        header = delivery.headers.get("X-Hub-Signature-256", "")
        scheme, _, given = header.partition("=")
        if scheme != "sha256" or not given:
            return False
        secret = self.oauth.client_secret.encode()
        if not secret:  # an HMAC under an empty key is one anybody can compute
            return False
        expected = hmac.new(secret, delivery.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.strip().lower().encode(), expected.encode())

    def parse_webhook(self, delivery: WebhookDelivery) -> list[PlatformEvent]:
        try:
            body = json.loads(delivery.body)
        except ValueError as exc:
            raise BadRequest("the webhook body is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
            raise BadRequest("the webhook body has no entry list")
        obj = str(body.get("object") or "")
        events = []
        for entry in body["entry"]:
            if not isinstance(entry, dict):
                continue
            changes = entry.get("changes")
            if not isinstance(changes, list):  # "Include Values" off: field names only
                changes = [{"field": f} for f in entry.get("changed_fields") or []]
            for change in changes:
                if isinstance(change, dict):
                    events.append(_event(obj, entry, change))
        return events

    async def handle_webhook(self, event: PlatformEvent, context: WebhookContext) -> None:
        data = event.data
        value = data.get("value") if isinstance(data.get("value"), dict) else {}
        if data["object"] == "permissions" and value.get("verb") == "revoked":
            permission = data["field"]
            if permission not in REQUIRED_SCOPES:
                return
            for connection in await context.connections(str(event.external_id)):
                await context.mark_needs_reconnect(
                    connection.id, f"the {permission} permission was removed at Meta"
                )
            return
        remote_id = _post_id(data["object"], value)
        if remote_id is None:
            return
        post = await context.post(remote_id)
        if post is None:
            return  # not something the gateway published
        await context.emit(
            Event(
                "post.changed",
                tenant_id=post.tenant_id,
                data={
                    "postId": post.post_id,
                    "jobId": post.job_id,
                    "platform": context.platform,
                    "remotePostId": remote_id,
                    "change": event.kind,
                    "item": value.get("item"),
                    "verb": value.get("verb"),
                },
            )
        )


def _event(obj: str, entry: dict[str, Any], change: dict[str, Any]) -> PlatformEvent:
    field = str(change.get("field") or "")
    content = {
        "object": obj,
        "entryId": str(entry.get("id") or ""),
        "time": entry.get("time"),
        "field": field,
        "value": change.get("value"),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    when = entry.get("time")
    return PlatformEvent(
        key=hashlib.sha256(canonical.encode()).hexdigest(),
        kind=f"{obj}.{field}",
        external_id=content["entryId"] or None,
        data=content,
        occurred_at=datetime.fromtimestamp(when, UTC) if isinstance(when, int | float) else None,
    )


def _post_id(obj: str, value: dict[str, Any]) -> str | None:
    """The published post or media an event is about (a Page feed change, an IG comment)."""
    if obj == "page":
        post_id = value.get("post_id")
    elif obj == "instagram":
        media = value.get("media")
        post_id = media.get("id") if isinstance(media, dict) else value.get("media_id")
    else:
        post_id = None
    return str(post_id) if post_id else None

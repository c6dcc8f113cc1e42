"""Mailchimp audience webhooks (form-encoded, PHP-style keys, unsigned) parsed into plain dicts."""

# A delivery carries no id, and Mailchimp retries failed ones for about 75 minutes with the same
# body: the dedupe key is a digest of the event's type, time and data, so a repeated delivery
# has the same key and is stored once. The core's ingress receives them (secret URL).

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

EVENTS = ("subscribe", "unsubscribe", "profile", "upemail", "cleaned", "campaign")
_KEY = re.compile(r"^(?P<head>[^\[\]]+)(?P<rest>(\[[^\[\]]*\])*)$")


class WebhookFormatError(ValueError):
    """The body is not a Mailchimp audience event."""


def is_validation(method: str, body: bytes) -> bool:
    """Mailchimp checks a new webhook URL with a GET (some say an empty POST): answer 200."""
    return method.upper() == "GET" or (method.upper() == "POST" and not body.strip())


def nest(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``data[merges][FNAME]=Jane`` → ``{"data": {"merges": {"FNAME": "Jane"}}}``."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise WebhookFormatError(f"unreadable field name {key!r}")
        path = [match["head"], *re.findall(r"\[([^\[\]]*)\]", match["rest"])]
        node = result
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise WebhookFormatError(f"field {key!r} clashes with another")
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise WebhookFormatError(f"field {key!r} clashes with another")
        node[path[-1]] = value
    return result


def _fired_at(value: str | None) -> str | None:
    # "2009-03-26 21:35:57": Mailchimp's format, read as UTC.
    if not value:
        return None
    try:
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise WebhookFormatError(f"fired_at {value!r} is not YYYY-MM-DD HH:MM:SS") from None
    return moment.isoformat().replace("+00:00", "Z")


def dedupe_key(event: str, fired_at: str | None, data: dict[str, Any]) -> str:
    canonical = json.dumps([event, fired_at, data], sort_keys=True, separators=(",", ":"))
    return "mailchimp:" + hashlib.sha256(canonical.encode()).hexdigest()


def parse(body: bytes) -> dict[str, Any]:
    """One delivery as ``{name, event, firedAt, listId, email, data, dedupeKey}``.

    ``name`` is what client webhooks receive (``mailchimp.subscribe``, …); ``data`` is
    Mailchimp's ``data[...]`` fields, nested.
    """
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookFormatError(f"not a form-encoded body: {exc}") from None
    fields = nest(pairs)
    event = fields.get("type")
    if event not in EVENTS:
        raise WebhookFormatError(f"type must be one of {', '.join(EVENTS)}, got {event!r}")
    data = fields.get("data") or {}
    if not isinstance(data, dict):
        raise WebhookFormatError("data must be a set of data[...] fields")
    fired_at = _fired_at(fields.get("fired_at"))
    email = data.get("new_email") if event == "upemail" else data.get("email")
    return {
        "name": f"mailchimp.{event}",
        "event": event,
        "firedAt": fired_at,
        "listId": data.get("list_id"),
        "email": email,
        "data": data,
        "dedupeKey": dedupe_key(event, fired_at, data),
    }

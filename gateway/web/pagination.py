"""Keyset pagination over a sorted list: `?limit=` and an opaque, signed `?cursor=`.

A cursor carries the last id of a page and a tag: an HMAC (a key the vault derives) over the
id, the tenant and the list. So a cursor this server did not give this tenant for this list
(garbage, an id spelt by hand, another tenant's cursor) names no position: 404, before any SQL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..errors import FieldProblem, ResourceNotFound
from .keys import gateway_of, principal_of

_PURPOSE = "pagination-cursor"
_TAG_BYTES = 12


@dataclass(frozen=True, slots=True)
class CursorScope:
    """Whose cursors, for which list: a cursor opens only in the scope that made it."""

    key: bytes
    scope: str

    def tag(self, value: str) -> str:
        digest = hmac.new(self.key, f"{self.scope}\n{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_TAG_BYTES]).decode()


def cursor_scope(request: web.Request) -> CursorScope:
    """The scope of an `/api/*` list: the caller's tenant and the list's path."""
    key = gateway_of(request).vault.derive(_PURPOSE).encode()
    return CursorScope(key, f"{principal_of(request).tenant_id}\n{request.path}")


def encode_cursor(value: str, scope: CursorScope) -> str:
    payload = f"{value}\n{scope.tag(value)}".encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str, scope: CursorScope) -> str:
    """The id a cursor continues after.

    :raises ResourceNotFound: for a cursor this scope did not make (it names no position).
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        payload = ""
    value, _, tag = payload.rpartition("\n")
    if not value or not hmac.compare_digest(tag, scope.tag(value)):
        raise ResourceNotFound(
            "no such page: this cursor was not given for this list",
            errors=[FieldProblem("cursor", "unknown", "use nextCursor as given, or start over")],
        )
    return value


def page_of(
    items: Sequence[dict[str, Any]],
    *,
    key: str,
    limit: int,
    cursor: str | None,
    scope: CursorScope,
) -> tuple[list[dict[str, Any]], str | None]:
    """The items after ``cursor`` (sorted by ``key``), at most ``limit``, and the next cursor."""
    ordered = sorted(items, key=lambda item: item[key])
    if cursor:
        after = decode_cursor(cursor, scope)
        ordered = [item for item in ordered if item[key] > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, (encode_cursor(page[-1][key], scope) if more and page else None)


def after_cursor(params: dict[str, Any], scope: CursorScope) -> str | None:
    """The id to continue after, from a validated ``?cursor=``."""
    cursor = params.get("cursor")
    return decode_cursor(cursor, scope) if cursor else None


def keyset_page(rows: Sequence[Any], limit: int, render, scope: CursorScope) -> dict[str, Any]:
    """A page from rows fetched with ``limit + 1`` (the extra row says there is more)."""
    page = list(rows[:limit])
    more = len(rows) > limit
    return {
        "data": [render(row) for row in page],
        "nextCursor": encode_cursor(page[-1].id, scope) if more and page else None,
    }

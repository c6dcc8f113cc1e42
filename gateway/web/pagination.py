"""Keyset pagination over a sorted list: `?limit=` and an opaque `?cursor=`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from ..errors import BadRequest, FieldProblem


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor.replace("-", "+").replace("_", "/") + "=" * (-len(cursor) % 4)
        # Any well-formed cursor is a position, even one we did not issue (fuzzers, typos).
        value = base64.b64decode(padded, validate=True).decode(errors="replace")
        if not value:
            raise ValueError("empty cursor")
        return value
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(
            "invalid cursor", errors=[FieldProblem("cursor", "invalid", "use nextCursor as given")]
        ) from None


def page_of(
    items: Sequence[dict[str, Any]], *, key: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The items after ``cursor`` (sorted by ``key``), at most ``limit``, and the next cursor."""
    ordered = sorted(items, key=lambda item: item[key])
    if cursor:
        after = decode_cursor(cursor)
        ordered = [item for item in ordered if item[key] > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return page, (encode_cursor(page[-1][key]) if more and page else None)


def after_cursor(params: dict[str, Any]) -> str | None:
    """The id to continue after, from a validated ``?cursor=``."""
    cursor = params.get("cursor")
    return decode_cursor(cursor) if cursor else None


def keyset_page(rows: Sequence[Any], limit: int, render) -> dict[str, Any]:
    """A page from rows fetched with ``limit + 1`` (the extra row says there is more)."""
    page = list(rows[:limit])
    more = len(rows) > limit
    return {
        "data": [render(row) for row in page],
        "nextCursor": encode_cursor(page[-1].id) if more and page else None,
    }

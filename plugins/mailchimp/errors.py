"""Mailchimp's problem+json errors as the gateway's categories: the one error table."""

from __future__ import annotations

from typing import Any

from gateway import (
    FieldProblem,
    InvalidRequest,
    NeedsReauth,
    NotFound,
    PermissionDenied,
    PlatformError,
    RateLimited,
    Transient,
    parse_retry_after,
)


def platform_error(status: int, body: Any, retry_after: str | None = None) -> PlatformError:
    """An error answer of the Marketing API as a category, with Mailchimp's title and detail.

    401 (API Key Invalid/Missing) → NeedsReauth; 403 (Wrong Datacenter, User Disabled,
    Forbidden) → PermissionDenied; 404 → NotFound; 429 (more than 10 connections, 500 pending
    batches) → RateLimited; 408 and 5xx → Transient; any other 4xx (400 Invalid Resource with
    its field errors, Member Exists, JSON Parse Error) → InvalidRequest. Very high volume can be
    answered without a JSON body: the status alone decides then.
    """
    document = body if isinstance(body, dict) else {}
    title = str(document.get("title") or f"HTTP {status}")
    detail = str(document.get("detail") or title)
    message = f"{title}: {detail}" if detail != title else title
    problems = [
        FieldProblem(str(e.get("field") or "(body)"), "invalid", str(e.get("message") or ""))
        for e in document.get("errors") or []
        if isinstance(e, dict)
    ]
    if problems:
        message += " (" + "; ".join(f"{p.field}: {p.message}" for p in problems) + ")"
    fields: dict[str, Any] = {"platform_code": title, "http_status": status}
    if status == 401:
        return NeedsReauth(message, **fields)
    if status == 403:
        return PermissionDenied(message, **fields)
    if status == 404:
        return NotFound(message, **fields)
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(retry_after), **fields)
    if status == 408 or status >= 500:
        return Transient(message, **fields)
    return InvalidRequest(message, errors=problems, **fields)

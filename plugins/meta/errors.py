"""The Graph error table: an error body onto the gateway's categories, by code, never by status.

Codes and subcodes are those of Meta's error-handling guide, rate-limiting guide and the
Instagram publishing error table (reference A6). ``is_transient: true`` makes any code
retryable. The HTTP status only decides when the body is not a Graph error at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from gateway import (
    InvalidRequest,
    NeedsReauth,
    NotFound,
    PermissionDenied,
    PlatformError,
    RateLimited,
    Transient,
    parse_retry_after,
)

# 190 and its subcodes, 102 (API session) and the auth subcodes that may come with others.
REAUTH_CODES = frozenset({102, 190})
REAUTH_SUBCODES = frozenset({458, 459, 460, 463, 464, 467, 492})
# App, user, Pages-with-user-token and custom throttles; 341 application limit.
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613})
BUC_THROTTLE = range(80000, 80015)  # 80001 Pages, 80002 Instagram, ... 80014 catalog batch
PERMISSION_CODES = frozenset({3, 10, 25}) | frozenset(range(200, 300))
TRANSIENT_CODES = frozenset({1, 2, -1, -2})
# Subcodes worth another try: server errors, download timeout, builder id, "not ready yet".
TRANSIENT_SUBCODES = frozenset({2207001, 2207003, 2207008, 2207027, 1363047, 1609010})
# Subcodes that say "start over with a new container" or "fix the media": never retried as is.
FATAL_SUBCODES = frozenset({2207020, 2207032, 2207053, 2207057})
# Long back-off: policy blocks, the daily publishing quota, spam restriction.
LONG_WAIT_SECONDS = 3600.0
THROTTLE_WAIT_SECONDS = 300.0
_PERMISSION = re.compile(
    r"\b(pages_[a-z_]+|instagram_[a-z_]+|read_insights|publish_video|business_management)\b"
)


def platform_code(code: Any, subcode: Any) -> str | None:
    if code is None:
        return None
    return f"{code}/{subcode}" if subcode is not None else str(code)


def regain_seconds(headers: Mapping[str, str]) -> float | None:
    """``estimated_time_to_regain_access`` (minutes) of the BUC header, in seconds."""
    longest = 0.0
    for entries in _buc(headers).values():
        for entry in entries if isinstance(entries, list) else []:
            minutes = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else 0
            if isinstance(minutes, int | float):
                longest = max(longest, float(minutes) * 60)
    return longest or None


def _buc(headers: Mapping[str, str]) -> dict[str, Any]:
    try:
        value = json.loads(headers.get("X-Business-Use-Case-Usage") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def graph_error(status: int, body: Any, headers: Mapping[str, str]) -> PlatformError:
    """The category of a Graph API error answer, with Meta's message and ``code/subcode``."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return _without_envelope(status, headers)
    code, subcode = error.get("code"), error.get("error_subcode")
    message = str(error.get("error_user_msg") or error.get("message") or f"HTTP {status}")
    if error.get("error_user_msg") and error.get("message"):
        message = f"{error['message']}: {error['error_user_msg']}"
    fields: dict[str, Any] = {"platform_code": platform_code(code, subcode), "http_status": status}
    if code in REAUTH_CODES or subcode in REAUTH_SUBCODES:
        return NeedsReauth(message, **fields)
    if (code == 9 and subcode == 2207042) or code == 368 or subcode == 2207051:
        return RateLimited(message, retry_after=LONG_WAIT_SECONDS, **fields)
    if code in THROTTLE_CODES or code in BUC_THROTTLE:
        wait = regain_seconds(headers) or THROTTLE_WAIT_SECONDS
        return RateLimited(message, retry_after=wait, **fields)
    if subcode in FATAL_SUBCODES:
        return InvalidRequest(message, **fields)
    if (
        error.get("is_transient") is True
        or code in TRANSIENT_CODES
        or subcode in TRANSIENT_SUBCODES
    ):
        return Transient(message, **fields)
    if code in PERMISSION_CODES:
        return PermissionDenied(message, missing_scopes=_PERMISSION.findall(message), **fields)
    if (code == 100 and subcode == 33) or code == 803:
        return NotFound(message, **fields)
    if status >= 500:
        return Transient(message, **fields)
    # 100 invalid parameter, 506 duplicate, 1609005 link, 36000-36004 media, 352 video format,
    # 9004 fetch failure, 24 media not found, 9007 without subcode...: fix the request.
    return InvalidRequest(message, **fields)


def _without_envelope(status: int, headers: Mapping[str, str]) -> PlatformError:
    detail = f"Graph answered HTTP {status} without an error body"
    if status == 429:
        retry = parse_retry_after(headers.get("Retry-After")) or THROTTLE_WAIT_SECONDS
        return RateLimited(detail, retry_after=retry, http_status=status)
    if status >= 500 or status == 408:
        return Transient(detail, http_status=status)
    if status == 401:
        return NeedsReauth(detail, http_status=status)
    if status == 403:
        return PermissionDenied(detail, http_status=status)
    if status == 404:
        return NotFound(detail, http_status=status)
    return InvalidRequest(detail, http_status=status)

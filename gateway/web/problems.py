"""RFC 9457 problem+json responses, the only error shape the API answers with."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import GatewayError
from ..redaction import redact_text

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:gateway:problem:"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        # Details may quote a platform's message; never let a credential ride along.
        "detail": redact_text(detail),
    }
    if errors:
        body["errors"] = errors
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def from_error(error: GatewayError, *, headers: dict[str, str] | None = None) -> web.Response:
    return problem_response(
        error.status,
        error.title,
        error.detail,
        code=error.code,
        errors=[e.as_json() for e in error.errors] or None,
        headers=headers,
    )

"""Errors of the control API, answered as RFC 9457 problem documents naming the bad field."""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web


class ControlInputError(Exception):
    """A control request (or a subclass's ``build_webhook``) was given a bad ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def response(self) -> web.Response:
        return problem(
            400,
            "Bad control request",
            self.message,
            errors=[{"field": self.field, "code": "invalid", "message": self.message}],
        )


def problem(
    status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    """An ``application/problem+json`` answer, the gateway's error format."""
    document = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.Response(
        status=status,
        text=json.dumps(document),
        content_type="application/problem+json",
        headers=headers,
    )


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object; ``{}`` when there is no body."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ControlInputError("body", "nested too deep") from None
    except ValueError as exc:
        raise ControlInputError("body", f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ControlInputError("body", "must be a JSON object")
    return value


def reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    """Refuse keys the route does not know, so a typo (``delay`` for ``delayMs``) is not ignored."""
    for key in body:
        if key not in allowed:
            raise ControlInputError(key, f"unknown field; expected one of {sorted(allowed)}")


def number(
    body: dict[str, Any], key: str, *, minimum: float = 0.0, maximum: float = math.inf
) -> float | None:
    """``body[key]`` as a finite number within bounds, or None when absent."""
    value = body.get(key)
    if value is None:
        return None
    # bool is an int in Python but never a meaningful number here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlInputError(key, "must be a number")
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ControlInputError(key, f"must be a number between {minimum:g} and {maximum:g}")
    return float(value)


def integer(body: dict[str, Any], key: str, *, minimum: int, maximum: int) -> int | None:
    """``body[key]`` as an int within bounds, or None when absent."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlInputError(key, "must be an integer")
    if not minimum <= value <= maximum:
        raise ControlInputError(key, f"must be between {minimum} and {maximum}")
    return value


def text(body: dict[str, Any], key: str) -> str | None:
    """``body[key]`` as a non-empty string, or None when absent."""
    if body.get(key) is None:
        return None
    return required_text(body, key)


def required_text(body: dict[str, Any], key: str) -> str:
    """``body[key]``, which must be a non-empty string."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ControlInputError(key, "must be a non-empty string")
    return value

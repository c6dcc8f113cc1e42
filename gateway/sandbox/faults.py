"""Injected faults: the next matching requests wait, then get a chosen status, body and headers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from .journal import FAULTED
from .paths import is_control, relative_path
from .problems import ControlInputError, integer, number, reject_unknown, text

log = structlog.get_logger("gateway.sandbox")

_FIELDS = {"method", "path", "status", "body", "headers", "delayMs", "count"}
_MAX_DELAY_MS = 10 * 60 * 1000
_NO_BODY = object()


@dataclass(slots=True)
class Fault:
    """One armed fault; ``remaining`` counts down as requests consume it."""

    method: str | None = None
    path: str | None = None
    status: int | None = None
    body: Any = _NO_BODY
    headers: dict[str, str] = field(default_factory=dict)
    delay_ms: float = 0.0
    remaining: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or fnmatchcase(path, self.path)
        )

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "headers": self.headers,
            "delayMs": self.delay_ms,
            "count": self.remaining,
        }
        if self.body is not _NO_BODY:
            answer["body"] = self.body
        return answer


def parse_fault(body: dict[str, Any]) -> Fault:
    """A ``POST /_control/faults`` body as a Fault; ControlInputError names the bad field."""
    reject_unknown(body, _FIELDS)
    method = text(body, "method")
    if method is not None and not method.isalpha():
        raise ControlInputError("method", "must be an HTTP method such as GET or POST")
    headers = body.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ControlInputError("headers", "must be an object of string values")
    fault = Fault(
        method=method.upper() if method else None,
        path=text(body, "path"),
        status=integer(body, "status", minimum=100, maximum=599),
        body=body.get("body", _NO_BODY),
        headers=headers,
        delay_ms=number(body, "delayMs", maximum=_MAX_DELAY_MS) or 0.0,
        remaining=integer(body, "count", minimum=1, maximum=1_000_000) or 1,
    )
    if fault.body is not _NO_BODY and fault.status is None:
        # Without a status the normal answer is sent, and its body with it.
        raise ControlInputError("body", "a fault body needs a status")
    if fault.status is None and not fault.delay_ms and not fault.headers:
        raise ControlInputError("status", "a fault needs a status, a delayMs or headers")
    return fault


class Faults:
    """The armed faults, consulted in the order they were added, and their aiohttp middleware."""

    def __init__(self, default_body: Callable[[int], Any] | None = None) -> None:
        self._faults: list[Fault] = []
        # The platform's own error body for a status, used when the fault gives none.
        self._default_body = default_body

    @property
    def pending(self) -> list[Fault]:
        return list(self._faults)

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> int:
        cleared = len(self._faults)
        self._faults.clear()
        return cleared

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, one use of it consumed."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = relative_path(request)
        fault = None if is_control(path) else self.take(request.method, path)
        if fault is None:
            return await handler(request)
        request[FAULTED] = True
        log.info("sandbox.fault", method=request.method, path=path, status=fault.status)
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.status is not None:
            return self._answer(fault)
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(fault.headers)
            raise
        response.headers.update(fault.headers)
        return response

    def _answer(self, fault: Fault) -> web.Response:
        assert fault.status is not None
        headers = CIMultiDict(fault.headers)
        if fault.body is not _NO_BODY:
            body = fault.body
        elif self._default_body is not None:
            body = self._default_body(fault.status)
        else:
            return web.Response(status=fault.status, headers=headers)
        if isinstance(body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            payload = body.encode()
        else:
            headers.setdefault("Content-Type", "application/json")
            payload = json.dumps(body).encode()
        return web.Response(status=fault.status, body=payload, headers=headers)

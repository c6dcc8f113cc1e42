"""The control API under ``<root>/_control/``: state, journal, faults, clock, webhooks, reset."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from .clock import rfc3339
from .faults import parse_fault
from .paths import CONTROL_PREFIX
from .problems import (
    ControlInputError,
    json_object,
    number,
    problem,
    reject_unknown,
    required_text,
    text,
)
from .targets import TargetRefused, http_url

if TYPE_CHECKING:
    from .base import Sandbox

log = structlog.get_logger("gateway.sandbox")
_WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=10)
# A century: far beyond any token lifetime, and far from datetime's overflow.
_MAX_ADVANCE = 100 * 365 * 86400


def _default(value: Any) -> Any:
    # Snapshots may hold datetimes; everything else must already be JSON.
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data, default=_default), content_type="application/json"
    )


class ControlApi:
    """The handlers of one sandbox's control routes."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def install(self, router: web.UrlDispatcher) -> None:
        for method, name, handler in (
            ("GET", "state", self.state),
            ("GET", "journal", self.journal),
            ("POST", "faults", self.add_fault),
            ("DELETE", "faults", self.clear_faults),
            ("POST", "clock", self.clock),
            ("POST", "webhooks", self.webhook),
            ("POST", "reset", self.reset),
        ):
            router.add_route(method, f"{CONTROL_PREFIX}{name}", self._guarded(handler))

    def _guarded(self, handler: Handler) -> Handler:
        access = self._sandbox.control_access

        # Bad input anywhere in a control handler (or a subclass's build_webhook) is a 400.
        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = access.refusal(request)
            if refused is not None:
                return refused
            try:
                return await handler(request)
            except ControlInputError as exc:
                return exc.response()

        return guarded

    async def state(self, request: web.Request) -> web.Response:
        snapshot = dict(self._sandbox.snapshot())
        for key in ("posts", "tokens", "accounts"):
            snapshot.setdefault(key, [])
        return _json(snapshot)

    async def journal(self, request: web.Request) -> web.Response:
        # ?method= and ?path= (a glob) narrow the answer, as they match faults.
        entries = self._sandbox.journal.find(
            method=request.query.get("method"), path=request.query.get("path")
        )
        return _json({"requests": [entry.as_json() for entry in entries]})

    async def add_fault(self, request: web.Request) -> web.Response:
        fault = parse_fault(await json_object(request))
        self._sandbox.faults.add(fault)
        return _json(fault.as_json(), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        return _json({"cleared": self._sandbox.faults.clear()})

    async def clock(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        reject_unknown(body, {"advanceSeconds"})
        seconds = number(body, "advanceSeconds", maximum=_MAX_ADVANCE)
        if seconds is None:
            raise ControlInputError("advanceSeconds", "is required")
        clock = self._sandbox.clock
        now = clock.advance(seconds)
        return _json({"now": rfc3339(now), "timestamp": now, "offsetSeconds": clock.offset})

    async def webhook(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        reject_unknown(body, {"event", "target", "payload"})
        event = required_text(body, "event")
        target = text(body, "target")
        url = None if target is None else http_url("target", target)
        payload = body.get("payload", {})
        if not isinstance(payload, dict):
            raise ControlInputError("payload", "must be a JSON object")
        # "handshake": the GET a platform sends to verify a subscription (Meta's hub.*).
        method, params, data, headers = "POST", None, None, {}
        try:
            if event == "handshake":
                method, params = "GET", self._sandbox.build_handshake(payload)
            else:
                data, headers = self._sandbox.build_webhook(event, payload)
        except NotImplementedError:
            raise ControlInputError(
                "event", f"the {self._sandbox.platform} sandbox sends no {event} webhooks"
            ) from None
        targets = self._sandbox.webhook_targets
        if targets is None:
            return problem(
                403,
                "Forbidden",
                "this sandbox has no webhook target: mount it in a gateway, or start it with "
                "`gateway sandbox --webhook-target URL`",
            )
        try:
            url = targets.resolve(url)
        except TargetRefused as exc:
            return problem(403, "Forbidden", str(exc))
        try:
            async with (
                aiohttp.ClientSession(timeout=_WEBHOOK_TIMEOUT) as session,
                # No redirects: a hop would leave the one place this sandbox may send to.
                session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    allow_redirects=False,
                ) as response,
            ):
                answer = {"status": response.status, "body": await response.text()}
        except (aiohttp.ClientError, TimeoutError) as exc:
            return problem(502, "Webhook not delivered", f"{type(exc).__name__}: {exc}")
        log.info(
            "sandbox.webhook",
            platform=self._sandbox.platform,
            webhook_event=event,
            status=answer["status"],
        )
        return _json(answer)

    async def reset(self, request: web.Request) -> web.Response:
        self._sandbox.reset()
        return _json({"reset": True})

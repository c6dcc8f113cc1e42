"""aiohttp's connection handler, answering what it refuses before any route as problem+json.

A request line or header over aiohttp's limits, or bytes that are not HTTP, never reach the
app's middlewares: aiohttp answers them itself, in plain text, with its version in `Server` and
the first 100 bytes of the offending line (an `Authorization` header, say) quoted in the answer
and in its log. aiohttp has no hook for that answer but its connection handler's `handle_error`,
and no setting for the handler's class, so the runner gives its server ours.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import structlog
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from .headers import DEFAULTS, SERVER
from .problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE

log = structlog.get_logger("gateway.web")


class ProblemRequestHandler(RequestHandler):
    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # part of an answer went out: too late for another
            raise ConnectionError("an answer was already being sent")
        if status == 500:
            log.error("http.unhandled_error", exc_info=exc)
        else:
            # Not aiohttp's message: it quotes the offending line, an Authorization header say.
            log.info("http.malformed_request", status=status, error=type(exc).__name__)
        response = problem_for(status, exc)
        response.force_close()  # as aiohttp does: the connection's framing can't be trusted
        return response


def problem_for(status: int, exc: BaseException | None) -> web.Response:
    """The problem+json answer for what aiohttp refused with ``status`` (and ``exc``)."""
    if isinstance(exc, LineTooLong):
        status, code = 431, "header_too_large"
        detail = "the request line or a header is longer than the gateway reads"
    elif status == 500:
        code, detail = "internal_error", "The gateway failed; its logs say why."
    elif status == 400:
        code, detail = "bad_request", "the request is not well-formed HTTP"
    else:
        code, detail = f"http_{status}", HTTPStatus(status).description
    title = HTTPStatus(status).phrase
    body = {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status, "detail": detail}
    response = web.Response(status=status, text=json.dumps(body), content_type=PROBLEM_CONTENT_TYPE)
    # No route ran, so the app's on_response_prepare does not: its headers are set here.
    response.headers["Server"] = SERVER
    response.headers.update(DEFAULTS)
    return response


class ProblemServer(web.Server):
    """A `web.Server` whose connections are handled by :class:`ProblemRequestHandler`."""

    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose server answers aiohttp's own refusals as problem+json."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds the server inside the app (`Application._make_handler`) with no way
        # to name its class; ours adds only the handler's class, so it takes over the object.
        server.__class__ = ProblemServer
        return server

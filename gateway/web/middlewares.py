"""Request ids and access logs, API-key authentication, and errors turned into problem+json."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from aiohttp import web

from ..db.outage import outage_of
from ..errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    PayloadTooLarge,
    ResourceNotFound,
    Unauthenticated,
)
from ..host import first_result
from . import problems
from .keys import GATEWAY, PRINCIPAL, REQUEST_ID

log = structlog.get_logger("gateway.web")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# Platform emulators answer in their platform's own error format, not ours.
_OWN_FORMAT_PREFIXES = ("/sandbox/",)


@web.middleware
async def request_context(request: web.Request, handler) -> web.StreamResponse:
    """Give every request an id (the caller's, if sane), bind it to logs, log the outcome."""
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
            status = response.status
            response.headers["X-Request-Id"] = request_id
            return response
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            telemetry = request.config_dict[GATEWAY].telemetry
            telemetry.instruments.api_requests.add(1, {"status": str(status)})
            telemetry.instruments.error_rate.record(status >= 500)
            log.info(
                "http.request",
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round(elapsed_ms, 2),
            )


@web.middleware
async def problem_errors(request: web.Request, handler) -> web.StreamResponse:
    """The one place errors become HTTP: problem+json, no stack traces, no secrets."""
    if request.path.startswith(_OWN_FORMAT_PREFIXES):
        return await handler(request)
    try:
        return await handler(request)
    except GatewayError as err:
        return problems.from_error(err)
    except web.HTTPMethodNotAllowed as err:
        allow = ", ".join(sorted(err.allowed_methods))
        return problems.from_error(
            MethodNotAllowed(f"{request.method} is not allowed here; use {allow}"),
            headers={"Allow": allow},
        )
    except web.HTTPRequestEntityTooLarge:
        return problems.from_error(PayloadTooLarge("the request body is too large"))
    except web.HTTPNotFound:
        return problems.from_error(ResourceNotFound(f"no such resource: {request.path}"))
    except web.HTTPException as err:
        if err.status >= 400:
            return problems.problem_response(
                err.status, err.reason, err.text or err.reason, code=f"http_{err.status}"
            )
        raise
    except ValueError as err:
        # aiohttp raises ValueError for some malformed input (e.g. bad percent-encoding).
        log.info("http.bad_request", error=str(err))
        return problems.from_error(BadRequest("the request could not be parsed"))
    except Exception as err:
        outage = outage_of(err)
        if outage is not None:
            # Not our bug and not the client's: the database is locked or out of reach for
            # now. Nothing was committed (a 202 is only sent after the commit), so a retry
            # is safe; Retry-After tells clients and proxies when.
            log.warning(
                "http.database_unavailable",
                method=request.method,
                path=request.path,
                reason=outage.reason,
                error=type(err).__name__,
            )
            return problems.problem_response(
                503,
                "Service unavailable",
                outage.detail,
                code="database_unavailable",
                headers={"Retry-After": str(outage.retry_after)},
            )
        log.exception("http.unhandled_error", method=request.method, path=request.path)
        return problems.problem_response(
            500,
            "Internal error",
            "The gateway failed; the request id identifies it in the logs.",
            code="internal_error",
        )


@web.middleware
async def authenticate(request: web.Request, handler) -> web.StreamResponse:
    """Every `/api/*` route needs a principal from the `authenticate_request` hook."""
    public = getattr(request.match_info.handler, "__gateway_public__", False)
    if (request.path == "/api" or request.path.startswith("/api/")) and not public:
        gateway = request.config_dict[GATEWAY]
        principal = await first_result(
            gateway.pm.hook.authenticate_request, gateway=gateway, request=request
        )
        if principal is None:
            error = Unauthenticated("send Authorization: Bearer <api key>")
            return problems.from_error(
                error, headers={"WWW-Authenticate": 'Bearer realm="gateway"'}
            )
        request[PRINCIPAL] = principal
        structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    return await handler(request)

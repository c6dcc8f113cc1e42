"""Request ids and access logs, text checks, API-key authentication, errors as problem+json."""

from __future__ import annotations

import math
import os
import re
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..db.outage import outage_of
from ..errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    PayloadTooLarge,
    ResourceNotFound,
    TooManyFailures,
    Unauthenticated,
)
from ..host import Gateway, first_result
from ..redaction import redact_path
from ..telemetry import Telemetry
from . import problems
from .keys import PRINCIPAL, REQUEST_ID
from .lockout import FailedAuthentications
from .textcheck import refuse_control, refuse_nul

log = structlog.get_logger("gateway.web")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# Platform emulators answer in their platform's own error format, not ours.
_OWN_FORMAT_PREFIXES = ("/sandbox/",)


def stack(gateway: Gateway, failures: FailedAuthentications) -> list[Middleware]:
    """The app's middlewares, outermost first, bound to ``gateway``.

    Bound once here rather than looked up per request (``request.config_dict`` builds a
    chain of the app's mappings on every call).
    """
    return [
        request_context(gateway.telemetry),
        problem_errors,
        authenticate(gateway, failures),  # a caller without a key learns nothing, not even a 400
        refuse_bad_text,
    ]


def request_context(telemetry: Telemetry) -> Middleware:
    requests = telemetry.instruments.api_requests

    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Give every request an id (the caller's, if sane), bind it to logs, log the outcome."""
        incoming = request.headers.get("X-Request-Id")
        if incoming and _SAFE_REQUEST_ID.match(incoming):
            request_id = incoming
        else:
            request_id = os.urandom(16).hex()  # as uuid4().hex looks, for a fifth of the cost
        request[REQUEST_ID] = request_id
        started = time.perf_counter()
        status = 500
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = await handler(request)
            status = response.status
            response.headers["X-Request-Id"] = request_id
            return response
        except web.HTTPException as answer:
            # Raised as the answer (redirects, a sandbox's 404): its own status, not a 500.
            status = answer.status
            answer.headers["X-Request-Id"] = request_id
            raise
        finally:
            requests.record(status)
            log.info(
                "http.request",
                method=request.method,
                path=logged_path(request),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.reset_contextvars(**bound)

    return request_context


def logged_path(request: web.Request) -> str:
    """The path as logs may show it: secret URL tokens and one-time link ids redacted."""
    return redact_path(request.path, request.match_info)


@web.middleware
async def problem_errors(request: web.Request, handler) -> web.StreamResponse:
    """The one place errors become HTTP: problem+json, no stack traces, no secrets."""
    if request.path.startswith(_OWN_FORMAT_PREFIXES) and _in_sub_app(request):
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
                path=logged_path(request),
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
        log.exception("http.unhandled_error", method=request.method, path=logged_path(request))
        return problems.problem_response(
            500,
            "Internal error",
            "The gateway failed; the request id identifies it in the logs.",
            code="internal_error",
        )


def _in_sub_app(request: web.Request) -> bool:
    # A path below /sandbox/ that no mounted sandbox matched is the gateway's to answer.
    return len(request.match_info.apps) > 1


@web.middleware
async def refuse_bad_text(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Path ids with control characters, and NULs anywhere in the query, are a 400 before any
    handler (a plugin's included) can take them to the database."""
    if not (request.path.startswith(_OWN_FORMAT_PREFIXES) and _in_sub_app(request)):
        refuse_control(request.match_info.items())
        if "%00" in request.raw_path:  # the only way a NUL gets into a query string
            refuse_nul(request.query.items())
    return await handler(request)


def too_many_failures(failures: FailedAuthentications, request: web.Request) -> web.Response | None:
    """The 429 for a caller whose address has failed too often lately, else None."""
    wait = failures.wait(request.remote)
    if not wait:
        return None
    seconds = math.ceil(wait)
    error = TooManyFailures(
        f"too many failed authentications from your address; try again in {seconds} s",
        retry_after=seconds,
    )
    return problems.from_error(error, headers={"Retry-After": str(seconds)})


def authenticate(gateway: Gateway, failures: FailedAuthentications) -> Middleware:
    hook = gateway.pm.hook.authenticate_request

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every `/api/*` route needs a principal from the `authenticate_request` hook."""
        path = request.path
        if (path == "/api" or path.startswith("/api/")) and not getattr(
            request.match_info.handler, "__gateway_public__", False
        ):
            # A request without credentials guesses nothing: it is neither held nor counted.
            guess = "Authorization" in request.headers or bool(request.cookies)
            refused = too_many_failures(failures, request) if guess else None
            if refused is not None:
                return refused
            principal = await first_result(hook, gateway=gateway, request=request)
            if principal is None:
                if guess:
                    failures.failed(request.remote)
                error = Unauthenticated("send Authorization: Bearer <api key>")
                return problems.from_error(
                    error, headers={"WWW-Authenticate": 'Bearer realm="gateway"'}
                )
            request[PRINCIPAL] = principal
            structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
        return await handler(request)

    return authenticate

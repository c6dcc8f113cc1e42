"""One span, one log line and one latency sample per outbound attempt, with secrets redacted."""

from __future__ import annotations

import time

import structlog
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.outbound.call import current_call
from gateway.redaction import redact_url

LOGGER_NAME = "gateway.outbound"
TRACER_NAME = "gateway.outbound"
METER_NAME = "gateway"
LATENCY_METRIC = "operation.latency"


class TelemetryMiddleware:
    """Observes each attempt as it goes over the wire (retries and auth replays included)."""

    def __init__(
        self,
        platform: str,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._platform = platform
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        meter = metrics.get_meter(METER_NAME, meter_provider=meter_provider)
        self._latency = meter.create_histogram(
            LATENCY_METRIC, unit="ms", description="Duration of gateway operations"
        )

    async def __call__(self, req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        call = current_call()
        call.attempt += 1
        # Built from the request as sent, so the query (access_token=…) is in it: redact first.
        url = redact_url(str(req.url))
        attributes = {
            "http.request.method": req.method,
            "url.full": url,
            "gateway.platform": self._platform,
            "gateway.attempt": call.attempt,
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        # Exceptions are not recorded on the span: their messages are not known to be clean.
        with self._tracer.start_as_current_span(
            f"{self._platform} {req.method}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                resp = await handler(req)
            except BaseException as err:
                error = type(err).__name__
                span.set_attribute("error.type", error)
                span.set_status(Status(StatusCode.ERROR, error))
                raise
            else:
                status = resp.status
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            finally:
                self._observe(req.method, url, status, error, call.attempt, started)
        return resp

    def _observe(
        self,
        method: str,
        url: str,
        status: int | None,
        error: str | None,
        attempt: int,
        started: float,
    ) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        self._latency.record(duration_ms, {"operation": "outbound", "platform": self._platform})
        fields = {
            "platform": self._platform,
            "method": method,
            "url": url,
            "status": status,
            "attempt": attempt,
            "duration_ms": duration_ms,
        }
        # Looked up per line: a logger cached before a test's capture_logs would bypass it.
        log = structlog.get_logger(LOGGER_NAME)
        if error is not None:
            log.warning("outbound.request", error=error, **fields)
        elif status is not None and status >= 500:
            log.warning("outbound.request", **fields)
        else:
            log.info("outbound.request", **fields)

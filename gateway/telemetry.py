"""structlog and OpenTelemetry set-up, redaction of secrets, and the report's metric instruments."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog
from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .errors import ConfigError
from .exposition import Exposition, Family, family
from .redaction import redact_value
from .settings import LoggingSettings, TelemetrySettings

PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST


def redact_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: no token, key or secret value ever reaches a log line."""
    for key in list(event_dict):
        if key in ("event", "timestamp", "level", "logger"):
            continue
        event_dict[key] = redact_value(key, event_dict[key])
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = redact_value("event", event)
    return event_dict


def configure_logging(settings: LoggingSettings, *, stream: Any = None) -> None:
    """JSON lines in production (or when not on a terminal), readable lines on a terminal."""
    stream = stream or sys.stderr
    use_json = settings.format == "json" or (
        settings.format == "auto" and not getattr(stream, "isatty", lambda: False)()
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=getattr(stream, "isatty", lambda: False)())
    )
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    _route_stdlib_logging(shared, renderer, level, stream)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


class _ClientFaultFilter(logging.Filter):
    """A malformed request is the client's fault: one line, no traceback, at info level."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
            record.msg = f"malformed request refused: {record.exc_info[1].message}"
            record.args = ()
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _route_stdlib_logging(shared: list[Any], renderer: Any, level: int, stream: Any) -> None:
    """Send the libraries' stdlib logs (aiohttp, alembic) through the same processors."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_processor,
                renderer,
            ],
        )
    )
    handler.addFilter(_ClientFaultFilter())
    root = logging.getLogger()
    for existing in [h for h in root.handlers if getattr(h, "_gateway", False)]:
        root.removeHandler(existing)
    handler._gateway = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(max(level, logging.INFO))
    # aiohttp's access log duplicates our own request log line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Alembic narrates every step at info; the gateway logs one line per upgrade instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class ApiRequests:
    """API requests served by status, and the share answered 5xx over the last five minutes.

    Every request records here, so recording is a dict increment and a per-second bucket,
    not an OpenTelemetry instrument call (several microseconds, as much as a fast request's
    own work). The metric reader reads the totals when it collects: ``api.requests`` (a
    counter, by status) and ``api.error_rate``.
    """

    WINDOW = 300  # seconds

    def __init__(self) -> None:
        self._by_status: dict[int, int] = {}
        self._seconds: deque[list[int]] = deque()  # [second, requests, 5xx], oldest first
        # The OTLP reader collects from its own thread.
        self._lock = threading.Lock()

    def record(self, status: int) -> None:
        second = int(time.monotonic())
        with self._lock:
            self._by_status[status] = self._by_status.get(status, 0) + 1
            seconds = self._seconds
            if not seconds or seconds[-1][0] != second:
                seconds.append([second, 0, 0])
                while seconds[0][0] <= second - self.WINDOW:
                    seconds.popleft()
            current = seconds[-1]
            current[1] += 1
            if status >= 500:
                current[2] += 1

    def error_rate(self) -> float:
        oldest = int(time.monotonic()) - self.WINDOW
        with self._lock:
            recent = [(n, failed) for second, n, failed in self._seconds if second > oldest]
        total = sum(n for n, _ in recent)
        return sum(failed for _, failed in recent) / total if total else 0.0

    def observe_requests(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            counts = sorted(self._by_status.items())
        for status, count in counts:
            yield Observation(count, {"status": str(status)})

    def observe_error_rate(self, _options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.error_rate())


@dataclass(frozen=True, slots=True)
class Instruments:
    """The report's metrics, created once per process on the global meter provider."""

    publish_success: metrics.Counter
    publish_error: metrics.Counter
    health_check: metrics.Histogram
    token_refresh_scheduled: metrics.Counter
    accounts_fetched: metrics.Gauge
    publish_latency: metrics.Histogram
    operation_latency: metrics.Histogram
    api_requests: ApiRequests  # also the source of api.error_rate
    dlq_size: metrics.Gauge


class _Meter:
    """The gateway's meter, noting the family of each instrument it makes (for ``/metrics``)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._meter = meter
        self.families: list[Family] = []

    def counter(self, name: str, description: str) -> metrics.Counter:
        self.families.append(family(name, "counter", description))
        return self._meter.create_counter(name, description=description)

    def gauge(self, name: str, description: str) -> metrics.Gauge:
        self.families.append(family(name, "gauge", description))
        return self._meter.create_gauge(name, description=description)

    def histogram(self, name: str, description: str, unit: str = "ms") -> metrics.Histogram:
        self.families.append(family(name, "histogram", description, unit))
        return self._meter.create_histogram(name, unit=unit, description=description)

    def observable(
        self, kind: str, name: str, callback: Any, description: str, unit: str = ""
    ) -> None:
        self.families.append(family(name, kind, description, unit))
        create = (
            self._meter.create_observable_counter
            if kind == "counter"
            else self._meter.create_observable_gauge
        )
        create(name, callbacks=[callback], unit=unit, description=description)


class Telemetry:
    """Process-wide OpenTelemetry providers: a meter with a Prometheus reader and a tracer.

    OpenTelemetry's global providers can be set once per process, so every gateway built in
    the same process (tests build many) shares these.
    """

    _instance: Telemetry | None = None
    _lock = threading.Lock()

    def __init__(self, settings: TelemetrySettings) -> None:
        resource = Resource.create({"service.name": settings.service_name})
        self.registry = CollectorRegistry(auto_describe=True)
        readers: list[Any] = [PrometheusMetricReader(registry=self.registry)]
        # With nowhere to send spans, they are not recorded: building and dropping one per
        # outbound call cost a tenth of a millisecond of the event loop. (Their trace and span
        # ids are still made, so the context still flows.)
        sampler = None if settings.otlp_endpoint else ALWAYS_OFF
        tracer_provider = TracerProvider(resource=resource, sampler=sampler)
        if settings.otlp_endpoint:
            try:
                readers.append(_otlp_metric_reader(settings.otlp_endpoint))
                _add_otlp_span_exporter(tracer_provider, settings.otlp_endpoint)
            except ImportError:
                raise ConfigError(
                    "telemetry.otlp_endpoint",
                    "needs the OTLP exporter: pip install 'integration-gateway[otlp]'",
                ) from None
        self.meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        self.tracer_provider = tracer_provider
        meter = _Meter(self.meter_provider.get_meter("gateway"))
        api_requests = ApiRequests()
        meter.observable(
            "counter", "api.requests", api_requests.observe_requests, "API requests served"
        )
        meter.observable(
            "gauge",
            "api.error_rate",
            api_requests.observe_error_rate,
            "Share of API requests answered 5xx over five minutes",
            unit="1",
        )
        self.instruments = Instruments(
            publish_success=meter.counter("connector.publish_success", "Posts published"),
            publish_error=meter.counter("connector.publish_error", "Publish attempts that failed"),
            health_check=meter.histogram("connector.health_check", "Health check latency"),
            token_refresh_scheduled=meter.counter(
                "connector.token_refresh_scheduled", "Token refreshes scheduled"
            ),
            accounts_fetched=meter.gauge(
                "connector.accounts_fetched", "Accounts found behind a connection"
            ),
            publish_latency=meter.histogram("api.publish.latency", "Publish call latency"),
            operation_latency=meter.histogram("operation.latency", "Latency of any operation"),
            api_requests=api_requests,
            dlq_size=meter.gauge("connector.dlq_size", "Dead jobs at the last DLQ audit"),
        )
        # /metrics shows every one of them from the start, at zero until its first value.
        self.exposition = Exposition(self.registry, meter.families)

    @classmethod
    def setup(cls, settings: TelemetrySettings) -> Telemetry:
        """The process's telemetry, made global on first use (libraries log to the globals)."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(settings)
                metrics.set_meter_provider(cls._instance.meter_provider)
                trace.set_tracer_provider(cls._instance.tracer_provider)
            return cls._instance

    def prometheus_text(self) -> bytes:
        return generate_latest(self.exposition)  # type: ignore[arg-type]  (any collect() will do)


def _otlp_metric_reader(endpoint: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    return PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint.rstrip("/") + "/v1/metrics")
    )


def _add_otlp_span_exporter(provider: TracerProvider, endpoint: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"))
    )

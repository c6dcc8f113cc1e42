"""Logs (JSON or readable, always redacted), stdlib logs routed through, OTLP export."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from aiohttp import web

from gateway.settings import LoggingSettings, TelemetrySettings
from gateway.telemetry import Telemetry, configure_logging


def logged(fmt: str, emit) -> str:
    import structlog

    stream = io.StringIO()
    configure_logging(LoggingSettings(format=fmt), stream=stream)
    try:
        emit(structlog.get_logger("test"))
    finally:
        configure_logging(LoggingSettings())
    return stream.getvalue()


def test_json_lines_carry_context_and_redact_secrets():
    import structlog

    def emit(log):
        with structlog.contextvars.bound_contextvars(request_id="r-1"):
            log.info(
                "outbound.request",
                url="https://graph.example.test/me?access_token=SECRET1&fields=id",
                client_secret="SECRET2",
                headers={"Authorization": "Bearer SECRET3", "Accept": "json"},
                note="sent Bearer SECRET4 upstream",
                status=200,
            )

    [line] = logged("json", emit).splitlines()
    record = json.loads(line)
    assert record["event"] == "outbound.request" and record["request_id"] == "r-1"
    assert record["status"] == 200 and record["level"] == "info"
    assert "fields=id" in record["url"]
    assert record["headers"]["Accept"] == "json"
    for secret in ("SECRET1", "SECRET2", "SECRET3", "SECRET4"):
        assert secret not in line


def test_an_errors_code_is_logged_and_an_authorization_code_is_not():
    def emit(log):
        log.info(
            "job.failed",
            jobId="job_1",
            error={"code": "rate_limited", "message": "slow down", "httpStatus": 429},
            code="AUTHCODE1",  # an OAuth callback's code, wherever it appears outside an error
            query={"code": "AUTHCODE2", "state": "s"},
            problem={"errors": [{"field": "body", "code": "too_long", "message": "…"}]},
            platform={"error": {"code": 190, "access_token": "SECRET6"}},
        )

    [line] = logged("json", emit).splitlines()
    record = json.loads(line)
    assert record["error"]["code"] == "rate_limited"
    assert record["problem"]["errors"][0]["code"] == "too_long"
    assert record["platform"]["error"]["code"] == 190
    for secret in ("AUTHCODE1", "AUTHCODE2", "SECRET6"):
        assert secret not in line


def test_console_format_is_readable_and_redacted():
    text = logged("console", lambda log: log.warning("vault.dev_key", api_key="SECRET5"))
    assert "vault.dev_key" in text and "SECRET5" not in text
    assert not text.lstrip().startswith("{")


def test_library_logs_are_routed_and_malformed_requests_are_one_line():
    from aiohttp.http_exceptions import BadHttpMessage

    def emit(_log):
        try:
            raise BadHttpMessage("Invalid header value char")
        except BadHttpMessage:
            logging.getLogger("aiohttp.server").exception("Error handling request")

    [line] = logged("json", emit).splitlines()
    record = json.loads(line)
    assert record["level"] == "info"
    assert record["event"].startswith("malformed request refused")
    assert "Traceback" not in line


async def test_traces_and_metrics_are_exported_over_otlp(aiohttp_server):
    received: list[tuple[str, str]] = []

    async def collect(request: web.Request) -> web.Response:
        await request.read()
        received.append((request.path, request.headers["Content-Type"]))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    app.router.add_post("/v1/metrics", collect)
    collector = await aiohttp_server(app)

    telemetry = Telemetry(TelemetrySettings(otlp_endpoint=str(collector.make_url("/"))))
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("publish") as span:
        assert span.is_recording()
        telemetry.instruments.publish_success.add(1, {"platform": "example"})
    # The exporters are synchronous: flush from a thread while this loop serves the collector.
    await asyncio.to_thread(telemetry.tracer_provider.force_flush)
    await asyncio.to_thread(telemetry.meter_provider.force_flush)
    await asyncio.to_thread(telemetry.meter_provider.shutdown)
    await asyncio.to_thread(telemetry.tracer_provider.shutdown)
    paths = {path for path, _ in received}
    assert paths == {"/v1/traces", "/v1/metrics"}
    assert all(kind == "application/x-protobuf" for _, kind in received)


def test_spans_are_not_recorded_when_there_is_nowhere_to_send_them():
    telemetry = Telemetry(TelemetrySettings())
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("publish") as span:
        assert not span.is_recording()
        assert span.get_span_context().is_valid  # the context still flows


def test_api_requests_are_counted_by_status_with_the_recent_5xx_share(monkeypatch):
    from gateway import telemetry

    clock = [1000.0]
    monkeypatch.setattr(telemetry.time, "monotonic", lambda: clock[0])
    requests = telemetry.ApiRequests()
    for status in (200, 202, 202, 503):
        requests.record(status)
    assert [(o.attributes["status"], o.value) for o in requests.observe_requests(None)] == [
        ("200", 1),
        ("202", 2),
        ("503", 1),
    ]
    assert requests.error_rate() == 0.25
    clock[0] += requests.WINDOW + 1  # the 5xx is older than the window now
    requests.record(200)
    assert requests.error_rate() == 0.0
    assert sum(o.value for o in requests.observe_requests(None)) == 5


def test_secret_path_parameters_are_redacted():
    from gateway.redaction import redact_path

    token = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
    assert redact_path(
        f"/webhooks/mailchimp/{token}", {"platform": "mailchimp", "secret": token}
    ) == ("/webhooks/mailchimp/[redacted]")
    assert redact_path("/oauth/meta/go/abc", {"platform": "meta", "linkId": "abc"}) == (
        "/oauth/meta/go/[redacted]"
    )
    assert redact_path("/api/jobs/job_1", {"jobId": "job_1"}) == "/api/jobs/job_1"

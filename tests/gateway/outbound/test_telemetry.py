"""Telemetry: one log line, one span and one latency sample per attempt, never a secret."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from structlog.testing import capture_logs

from gateway.errors import Transient

SECRET_TOKEN = "tok-SECRET-abc123"
SECRET_QUERY = "query-SECRET-xyz789"


async def _two_attempts(upstream, make_client):
    recorder, server = upstream
    recorder.then(503)
    client = await make_client()
    with capture_logs() as logs:
        async with client.get(
            str(server.make_url("/v1/me")),
            token=SECRET_TOKEN,
            params={"access_token": SECRET_QUERY, "fields": "id"},
        ) as resp:
            assert resp.status == 200
    # The secrets really went out: the test would be vacuous otherwise.
    assert recorder.requests[0].headers["Authorization"] == f"Bearer {SECRET_TOKEN}"
    assert recorder.requests[0].query["access_token"] == SECRET_QUERY
    return [entry for entry in logs if entry["event"] == "outbound.request"]


async def test_one_log_line_per_attempt_without_secrets(upstream, make_client):
    lines = await _two_attempts(upstream, make_client)
    assert [(line["attempt"], line["status"]) for line in lines] == [(1, 503), (2, 200)]
    for line in lines:
        assert line["platform"] == "meta"
        assert line["method"] == "GET"
        assert line["duration_ms"] >= 0
        assert "access_token=[redacted]" in line["url"]
        assert "fields=id" in line["url"]
    assert SECRET_TOKEN not in repr(lines)
    assert SECRET_QUERY not in repr(lines)


async def test_one_span_per_attempt_without_secrets(upstream, make_client, span_exporter):
    await _two_attempts(upstream, make_client)
    spans = span_exporter.get_finished_spans()
    assert [span.name for span in spans] == ["meta GET", "meta GET"]
    assert [span.attributes["gateway.attempt"] for span in spans] == [1, 2]
    assert [span.attributes["http.response.status_code"] for span in spans] == [503, 200]
    assert [span.status.status_code for span in spans] == [StatusCode.ERROR, StatusCode.UNSET]
    for span in spans:
        assert span.kind is SpanKind.CLIENT
        assert span.attributes["http.request.method"] == "GET"
        assert "access_token=[redacted]" in span.attributes["url.full"]
        dumped = span.to_json()
        assert SECRET_TOKEN not in dumped
        assert SECRET_QUERY not in dumped


async def test_latency_histogram_per_attempt(upstream, make_client, metric_reader):
    await _two_attempts(upstream, make_client)
    metrics = [
        metric
        for resource in metric_reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "operation.latency"
    ]
    (latency,) = metrics
    assert latency.unit == "ms"
    (point,) = latency.data.data_points
    assert dict(point.attributes) == {"operation": "outbound", "platform": "meta"}
    assert point.count == 2


async def test_failed_attempts_are_logged_and_traced(make_client, span_exporter, unused_tcp_port):
    client = await make_client("linkedin")
    with capture_logs() as logs, pytest.raises(Transient):
        async with client.delete(f"http://127.0.0.1:{unused_tcp_port}/x"):
            pass
    lines = [entry for entry in logs if entry["event"] == "outbound.request"]
    assert [line["attempt"] for line in lines] == [1, 2, 3]
    assert {line["error"] for line in lines} == {"ClientConnectorError"}
    assert {line["status"] for line in lines} == {None}
    assert {line["log_level"] for line in lines} == {"warning"}
    spans = span_exporter.get_finished_spans()
    assert [span.name for span in spans] == ["linkedin DELETE"] * 3
    assert {span.attributes["error.type"] for span in spans} == {"ClientConnectorError"}
    assert all(not span.events for span in spans)  # no exception message recorded

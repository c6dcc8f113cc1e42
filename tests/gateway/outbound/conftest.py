"""Fixtures for the outbound client tests: real upstream servers, virtual time, local telemetry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.outbound import OutboundClient, RetryPolicy


class VirtualTime:
    """A clock that only moves when someone sleeps on it; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.now + seconds
        await asyncio.sleep(0)
        # Concurrent sleepers that started together all wake at the same virtual instant.
        self.now = max(self.now, target)


@dataclass(frozen=True)
class Seen:
    """One request as the upstream received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class Upstream:
    """A real HTTP server answering from a script, and recording what it received."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.script: list[Callable[[web.Request], Any]] = []
        self.default: Callable[[web.Request], Any] = lambda _: web.json_response({"ok": True})

    def then(self, status: int = 200, headers: dict[str, str] | None = None, **body: Any):
        """Queue one answer; once the queue is empty, ``default`` answers."""
        self.script.append(
            lambda _: web.json_response(body or {"status": status}, status=status, headers=headers)
        )
        return self

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        answer = self.script.pop(0) if self.script else self.default
        result = answer(request)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    @property
    def count(self) -> int:
        return len(self.requests)


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def upstream(aiohttp_server) -> AsyncIterator[tuple[Upstream, Any]]:
    recorder = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    server = await aiohttp_server(app)
    yield recorder, server


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> TracerProvider:
    # A local provider handed to the client: the global one stays untouched.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
async def make_client(
    vtime: VirtualTime, tracer_provider: TracerProvider, metric_reader: InMemoryMetricReader
) -> AsyncIterator[Callable[..., Any]]:
    """Build started clients whose retry back-off sleeps in virtual time; closed at teardown."""
    meter_provider = MeterProvider(metric_readers=[metric_reader])
    clients: list[OutboundClient] = []

    async def make(platform: str = "meta", **kwargs: Any) -> OutboundClient:
        kwargs.setdefault("retry", RetryPolicy(sleep=vtime.sleep, jitter=lambda ceiling: ceiling))
        kwargs.setdefault("tracer_provider", tracer_provider)
        kwargs.setdefault("meter_provider", meter_provider)
        client = OutboundClient(platform, **kwargs)
        await client.start()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
    meter_provider.shutdown()

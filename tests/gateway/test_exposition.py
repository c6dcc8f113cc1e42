"""/metrics: every metric the README lists, under that name, from the start of the process."""

from __future__ import annotations

import asyncio
import re

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import TelemetrySettings
from gateway.telemetry import Telemetry

from ..conftest import ROOT
from ..support import free_port, gateway_env, spawn_gateway


def readme_metrics() -> list[str]:
    """The first column of the README's metrics table (under "## Telemetry")."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Telemetry\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)


def families(text: str) -> dict[str, list]:
    """Family name as written on its ``# TYPE`` line → its samples."""
    found = {}
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        found[name] = family.samples
    return found


def test_the_readme_lists_every_declared_metric():
    listed = readme_metrics()
    assert len(listed) >= 10 and len(set(listed)) == len(listed)
    declared = [f.name for f in Telemetry(TelemetrySettings()).exposition.declared]
    assert sorted(listed) == sorted(declared)


def test_recorded_metrics_keep_the_declared_names_and_lose_their_zero():
    telemetry = Telemetry(TelemetrySettings())  # its own meter: nothing recorded yet
    before = families(telemetry.prometheus_text().decode())
    instruments = telemetry.instruments
    instruments.publish_success.add(1, {"platform": "meta"})
    instruments.publish_error.add(1, {"platform": "meta", "code": "transient"})
    instruments.health_check.record(12, {"platform": "meta", "status": "healthy"})
    instruments.token_refresh_scheduled.add(1, {"platform": "meta"})
    instruments.accounts_fetched.set(2, {"platform": "meta"})
    instruments.publish_latency.record(30, {"platform": "meta"})
    instruments.operation_latency.record(5, {"operation": "outbound", "platform": "meta"})
    instruments.dlq_size.set(1, {"platform": "meta", "reason": "non_retryable"})
    instruments.api_requests.record(500)  # api.error_rate: 1
    after = families(telemetry.prometheus_text().decode())
    declared = {f.name for f in telemetry.exposition.declared}
    # The exporter's own names are the declared ones: no family twice, none under another name.
    assert declared <= set(before) and declared <= set(after)
    assert set(after) - declared == {"target_info"}
    for name in declared:
        assert all(sample.value == 0 for sample in before[name]), name
        # The zero without labels gave way to the series the value made (the exporter's carry
        # the meter's name).
        assert all("otel_scope_name" in sample.labels for sample in after[name]), name
        assert any(sample.value > 0 for sample in after[name]), name


async def test_a_fresh_gateway_shows_every_readme_metric_at_zero(tmp_path):
    site = tmp_path / "site"  # the built-in plugins alone
    site.mkdir()
    env = gateway_env(
        tmp_path / "var", site, database_url=f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    )
    port = free_port()
    process = await spawn_gateway("serve", "--port", str(port), env=env)
    try:
        text = await first_scrape(f"http://127.0.0.1:{port}/metrics", process)
    finally:
        process.kill()
        await process.wait()
    shown = families(text)
    for name in readme_metrics():
        assert name in shown, f"{name} is not in /metrics:\n{text}"
        assert shown[name] and all(s.value == 0 for s in shown[name]), (name, shown[name])


async def first_scrape(url: str, process) -> str:
    """The body of the first request the process answers (nothing else asked it before)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(url) as response:
                    assert response.status == 200
                    return await response.text()
            except aiohttp.ClientConnectionError:
                assert process.returncode is None, "gateway serve exited"
                await asyncio.sleep(0.05)
    raise AssertionError(f"nothing answered at {url}")

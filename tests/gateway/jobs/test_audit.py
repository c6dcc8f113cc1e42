"""The DLQ audit: counts by platform and reason, one event per tenant, once a day cluster-wide."""

from __future__ import annotations

from gateway.connections.scheduler import ConnectionScheduler
from gateway.jobs.audit import audit_dead_letters
from gateway.jobs.worker import Workers

from .test_pipeline import POSTS, account_of, fault, queue


async def bury_two(live) -> None:
    connection_id, account_id = await account_of(live)
    body = {"error": {"code": "invalid_parameter", "message": "no"}}
    await fault(live, method="POST", path=POSTS, status=400, body=body, count=2)
    for _ in range(2):
        await queue(live, connection_id, account_id)
        await Workers(live.gateway, 1).run_once()


async def test_the_audit_summarises_dead_jobs_and_tells_the_tenant(live, example_plugin):
    await bury_two(live)
    summary = await audit_dead_letters(live.gateway)
    assert summary == {"total": 2, "byPlatform": {"examplesocial": {"non_retryable": 2}}}
    assert example_plugin.EVENTS.count("dlq.audit") == 1


async def test_the_daily_audit_runs_once_however_many_processes_tick(live, example_plugin):
    await bury_two(live)
    first, second = ConnectionScheduler(live.gateway), ConnectionScheduler(live.gateway)
    await first.tick()
    await second.tick()
    await first.tick()
    assert example_plugin.EVENTS.count("dlq.audit") == 1


def dlq_size(live) -> dict[tuple[str, str], float]:
    """connector_dlq_size in /metrics as this process shows it: (platform, reason) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    text = live.gateway.telemetry.prometheus_text().decode()
    [family] = [f for f in text_string_to_metric_families(text) if f.name == "connector_dlq_size"]
    return {
        (s.labels.get("platform"), s.labels.get("reason")): s.value
        for s in family.samples
        if s.labels.get("platform") == "examplesocial"
    }


async def test_the_dlq_size_drops_to_zero_once_the_dead_jobs_are_gone(live):
    await bury_two(live)
    await audit_dead_letters(live.gateway)
    assert dlq_size(live)[("examplesocial", "non_retryable")] == 2
    _, dead = await live.api("GET", "/api/dlq")
    for job in dead["data"]:
        status, _ = await live.api("DELETE", f"/api/dlq/{job['jobId']}")
        assert status == 200
    await audit_dead_letters(live.gateway)
    # A gauge keeps its last value unless told: the audit says the queue is empty now.
    sizes = dlq_size(live)
    assert sizes[("examplesocial", "non_retryable")] == 0 and set(sizes.values()) == {0}

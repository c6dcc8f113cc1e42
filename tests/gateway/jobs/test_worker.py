"""A connector that raises something unexpected: each crash is an attempt, and the job ends dead."""

from __future__ import annotations

from structlog.testing import capture_logs

from gateway.jobs.worker import Workers

from .test_pipeline import account_of, job, make_due, posts, queue


async def test_a_poison_job_reaches_the_dlq(live, monkeypatch):
    from gateway_example_plugin.social_connector import ExampleSocialConnector

    async def crash(self, request, account, credentials, *, idempotency_key):
        raise KeyError("a field the connector did not expect")

    monkeypatch.setattr(ExampleSocialConnector, "publish", crash)
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    workers = Workers(live.gateway, 1)
    with capture_logs() as logs:
        for attempt in range(1, 5):
            assert await workers.run_once()  # the crash does not escape the worker
            seen = await job(live, accepted["jobId"])
            assert seen["attempts"] == attempt, seen
            if attempt < 4:
                assert seen["status"] == "failed", seen
                assert seen["error"]["code"] == "internal_error" and seen["error"]["retryable"]
                await make_due(live, accepted["jobId"])
    assert seen["status"] == "dead" and seen["maxAttempts"] == 4
    _, dead = await live.api("GET", "/api/dlq")
    assert [(d["jobId"], d["reasonCode"]) for d in dead["data"]] == [
        (accepted["jobId"], "max_attempts")
    ]
    crashes = [entry for entry in logs if entry["event"] == "job.attempt_crashed"]
    assert len(crashes) == 4 and all(entry.get("exc_info") for entry in crashes)
    assert crashes[0]["error"] == "KeyError"
    assert not [entry for entry in logs if entry["event"] == "worker.pass_failed"]
    assert await posts(live) == []
    assert not await workers.run_once()


async def test_a_crash_is_in_doubt_where_the_platform_cannot_be_asked(live, monkeypatch):
    from gateway_example_plugin.social_connector import ExampleSocialConnector

    async def crash(self, request, account, credentials, *, idempotency_key):
        raise RuntimeError("after the request left, perhaps")

    monkeypatch.setattr(ExampleSocialConnector, "publish", crash)
    monkeypatch.setattr(ExampleSocialConnector, "reconciles", property(lambda self: False))
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    workers = Workers(live.gateway, 1)
    assert await workers.run_once()
    await make_due(live, accepted["jobId"])
    assert await workers.run_once()  # it would not post blind: to the DLQ instead
    seen = await job(live, accepted["jobId"])
    assert seen["status"] == "dead" and seen["error"]["code"] == "outcome_unknown", seen

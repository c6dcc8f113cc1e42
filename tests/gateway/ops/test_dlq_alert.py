"""The DLQ audit's alert reaches a Slack-compatible incoming webhook (a real local receiver)."""

from __future__ import annotations

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from gateway.errors import ConfigError
from gateway.jobs.audit import audit_dead_letters
from gateway.settings import settings_from_mapping

from ..connections.conftest import start_live
from ..jobs.test_audit import bury_two

SECRET_PATH = "/services/T000/B000/s3cr3tPath"


@pytest.fixture
async def receiver(aiohttp_server):
    """An incoming-webhook receiver; ``answers`` is the status for each request, in turn."""
    received: list[dict] = []
    answers: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=answers.pop(0) if answers else 200, text="ok")

    app = web.Application()
    app.router.add_post(SECRET_PATH, hook)
    server = await aiohttp_server(app)
    return str(server.make_url(SECRET_PATH)), received, answers


@pytest.fixture
async def alerting(aiohttp_server, tmp_path, receiver):
    url, received, answers = receiver
    live = await start_live(aiohttp_server, tmp_path, alerts={"dlq_webhook_url": url})
    yield live, received, answers
    await live.http.close()


async def test_the_audit_posts_its_summary_as_text(alerting):
    live, received, _ = alerting
    await bury_two(live)
    summary = await audit_dead_letters(live.gateway)
    assert summary["total"] == 2
    [message] = received
    assert set(message) == {"text"}
    assert message["text"].splitlines()[:2] == [
        "DLQ audit: 2 dead jobs need review",
        "• examplesocial: 2 (non_retryable 2)",
    ]


async def test_nothing_is_sent_when_the_dlq_is_empty(alerting):
    live, received, _ = alerting
    assert (await audit_dead_letters(live.gateway))["total"] == 0
    assert received == []


async def test_a_failing_receiver_is_retried_then_logged_without_the_secret(alerting):
    live, received, answers = alerting
    await bury_two(live)
    answers.extend([503, 503, 503])
    with capture_logs() as logs:
        summary = await audit_dead_letters(live.gateway)
    assert summary["total"] == 2  # the audit itself still completes
    assert len(received) == 3
    [failed] = [entry for entry in logs if entry["event"] == "dlq.alert_failed"]
    assert failed["error"] == "HTTP 503"
    assert "s3cr3t" not in repr(logs)


async def test_a_receiver_that_recovers_gets_the_alert(alerting):
    live, received, answers = alerting
    await bury_two(live)
    answers.append(500)
    with capture_logs() as logs:
        await audit_dead_letters(live.gateway)
    assert len(received) == 2 and received[0] == received[1]
    assert any(entry["event"] == "dlq.alert_sent" for entry in logs)
    assert "s3cr3t" not in repr(logs)


def test_the_url_setting_is_checked_and_never_echoed():
    with pytest.raises(ConfigError) as refused:
        settings_from_mapping({"alerts": {"dlq_webhook_url": "hooks.example.com/s3cr3t"}})
    assert "alerts.dlq_webhook_url" in str(refused.value) and "s3cr3t" not in str(refused.value)
    settings = settings_from_mapping(
        {"alerts": {"dlq_webhook_url": "https://hooks.example.com/services/s3cr3t"}}
    )
    assert "s3cr3t" not in repr(settings)

"""A client generated from the served /openapi.json (openapi-python-client) has named models
and drives a real publish through a running gateway."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ...plugins.mailchimp.conftest import ACME, start_running

PACKAGE = "gateway_client"
NEWSLETTER = "a1b2c3d4e5"  # the sandbox account's audience with a default sender


@pytest.fixture
async def live(tmp_path):
    running, runner = await start_running(
        tmp_path / "gateway", jobs={"concurrency": 1, "poll_seconds": 0.05}
    )
    yield running
    await running.http.close()
    await runner.cleanup()


@pytest.fixture
def generated(tmp_path, monkeypatch):
    """Generates the client from a document written to tmp_path; imports it (and forgets it)."""

    def generate(document: dict):
        (tmp_path / "openapi.json").write_text(json.dumps(document))
        # No post hooks: they would run ruff on the output, which is not what is tested.
        (tmp_path / "config.json").write_text(json.dumps({"post_hooks": []}))
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("openapi-python-client")),
                "generate",
                *("--path", "openapi.json", "--config", "config.json"),
                *("--output-path", PACKAGE, "--meta", "none", "--fail-on-warning"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        monkeypatch.syspath_prepend(str(tmp_path))
        return importlib.import_module(PACKAGE)

    yield generate
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


async def test_a_generated_client_publishes_with_named_models(live, generated):
    async with live.http.get(f"{live.base}/openapi.json") as response:
        document = await response.json()
    client_package = await asyncio.to_thread(generated, document)
    models = importlib.import_module(f"{PACKAGE}.models")
    for name in ("Job", "JobList", "DeadJob", "Post", "PublishAccepted", "Connection", "Account"):
        assert hasattr(models, name), name
    # No core route has models of its own (`ReadJobResponse200`, `PublishBody`, …).
    core_operations = [
        "".join(part.title() for part in operation["operationId"].split("_"))
        for methods in document["paths"].values()
        for operation in methods.values()
        if not any(tag.startswith("plugin:") for tag in operation["tags"])
    ]
    anonymous = [
        name
        for name in dir(models)
        for operation in core_operations
        if name.startswith((f"{operation}Response", f"{operation}Body"))
    ]
    assert anonymous == []

    api = importlib.import_module(f"{PACKAGE}.api")
    connections = importlib.import_module(f"{api.__name__}.connections")
    publishing = importlib.import_module(f"{api.__name__}.publishing")
    for module in ("create_connection", "list_accounts"):
        importlib.import_module(f"{connections.__name__}.{module}")
    for module in ("publish", "read_job", "list_jobs"):
        importlib.import_module(f"{publishing.__name__}.{module}")

    client = client_package.AuthenticatedClient(base_url=live.base, token=live.key.api_key)
    async with client:
        created = await connections.create_connection.asyncio_detailed(
            client=client, body=models.ApiKeyConnect(platform="mailchimp", api_key=ACME.api_key)
        )
        assert created.status_code == 201, created.content
        connection = created.parsed
        assert isinstance(connection, models.Connection)
        assert connection.status == models.ConnectionStatus.ACTIVE

        accounts = await connections.list_accounts.asyncio(
            connection_id=connection.id, client=client
        )
        assert isinstance(accounts, models.AccountList)
        assert all(isinstance(a, models.Account) for a in accounts.data)
        account = next(a for a in accounts.data if a.external_id == NEWSLETTER)

        accepted = await publishing.publish.asyncio_detailed(
            client=client,
            body=models.Post(
                connection_id=connection.id,
                account_id=account.id,
                title="Spring news",
                body="Hello from a generated client",
            ),
            idempotency_key="generated-client-1",
        )
        assert accepted.status_code == 202, accepted.content
        assert isinstance(accepted.parsed, models.PublishAccepted)
        job_id = accepted.parsed.job_id

        for _ in range(400):
            job = await publishing.read_job.asyncio(job_id=job_id, client=client)
            assert isinstance(job, models.Job)
            if job.status not in (models.JobStatus.QUEUED, models.JobStatus.RUNNING):
                break
            await asyncio.sleep(0.025)
        assert job.status == models.JobStatus.PUBLISHED, job
        assert job.job_id == job_id and job.post_id == accepted.parsed.post_id
        assert job.remote_post_id and job.error is None and isinstance(job.notes, list)

        missing = await publishing.read_job.asyncio(job_id="job_nope", client=client)
        assert isinstance(missing, models.Problem) and missing.status == 404
        listed = await publishing.list_jobs.asyncio(client=client)
        assert isinstance(listed, models.JobList)
        assert [j.job_id for j in listed.data] == [job_id] and listed.next_cursor is None
    # The campaign is at the platform (the sandbox), as the job says.
    assert [c["id"] for c in (await live.state())["posts"]] == [job.remote_post_id]

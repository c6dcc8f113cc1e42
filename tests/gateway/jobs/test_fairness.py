"""One tenant's backlog cannot starve another tenant: tenants take turns."""

from __future__ import annotations

import pytest

from gateway.jobs import claims
from gateway.jobs.worker import Workers

from .test_pipeline import account_of, another_tenant_publishes, job, queue, tenants_with_backlogs


async def test_a_quiet_tenant_is_served_between_a_noisy_tenants_jobs(live_db):
    live = live_db
    connection_id, account_id = await account_of(live)
    noisy = [(await queue(live, connection_id, account_id))[1]["jobId"] for _ in range(20)]

    quiet_key, accepted = await another_tenant_publishes(live, "quiet", "Quiet")

    workers = Workers(live.gateway, 1)
    for _ in range(2):  # first in line was the noisy tenant; the next turn is the quiet one's
        assert await workers.run_once()
    quiet = (await live.api("GET", f"/api/jobs/{accepted['jobId']}", key=quiet_key))[1]
    assert quiet["status"] == "published"
    states = [(await job(live, job_id))["status"] for job_id in noisy]
    assert states.count("published") == 1 and states.count("queued") == 19
    while await workers.run_once():
        pass
    assert {(await job(live, job_id))["status"] for job_id in noisy} == {"published"}


async def test_a_claimer_limited_to_tenants_leaves_the_others_jobs_alone(live_db):
    live = live_db
    connection_id, account_id = await account_of(live)
    theirs = (await queue(live, connection_id, account_id))[1]["jobId"]
    mine_key, mine = await another_tenant_publishes(live, "mine", "Mine")
    workers = Workers(live.gateway, 1)
    workers.claimer.only_tenants = frozenset({mine_key.tenant_id})
    assert await workers.run_once()
    assert not await workers.run_once()
    published = (await live.api("GET", f"/api/jobs/{mine['jobId']}", key=mine_key))[1]
    assert published["status"] == "published"
    assert (await job(live, theirs))["status"] == "queued"


@pytest.mark.parametrize("page", [4, 100], ids=["paged", "whole"])
async def test_every_tenant_gets_a_turn_before_any_gets_a_second(live_db, monkeypatch, page):
    """However many tenants have due work (more than one read of them holds: ``paged``), and
    however often the list is read again, the turns go round all of them."""
    monkeypatch.setattr(claims, "ROTATION_PAGE", page)
    monkeypatch.setattr(claims, "TENANTS_PER_READ", 2)
    # Read again before every claim: a re-read must carry on where the turns were.
    monkeypatch.setattr(claims, "ROTATION_REFRESH_SECONDS", -1.0)
    await tenants_with_backlogs(live_db, 10, 3)  # and the first tenant's one job
    workers = Workers(live_db.gateway, 1)
    served = []
    for _ in range(11 + 10):
        claimed = await workers.claim()
        assert claimed is not None
        served.append(claimed.tenant_id)
    assert len(set(served[:11])) == 11  # a turn each
    assert served[11:] == [t for t in served[:11] if t.startswith("ten_backlog")]  # in order
    # The last jobs: a third turn for the ten with a backlog, then nothing is due.
    assert len({(await workers.claim()).tenant_id for _ in range(10)}) == 10
    assert await workers.claim() is None

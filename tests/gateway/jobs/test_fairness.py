"""One tenant's backlog cannot starve another tenant: tenants take turns."""

from __future__ import annotations

from gateway.jobs.worker import Workers

from .test_pipeline import account_of, another_tenant_publishes, job, queue


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

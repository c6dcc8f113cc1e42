"""Batched connection reads: shared queries, each caller its own answer, never an older row."""

from __future__ import annotations

import asyncio

import pytest

from gateway.connections.reader import ConnectionReader
from gateway.db.connections import ConnectionRepository
from gateway.errors import ResourceNotFound


async def test_concurrent_reads_share_queries_and_each_gets_its_connection(live):
    ids = []
    for n in range(5):
        _, connected, _ = await live.connect(login_as=f"user-{n}")
        ids.append(connected["connectionId"])
    reader = ConnectionReader(live.gateway)
    wanted = ids * 4  # the same connection asked for by several callers at once
    *loaded, rows = await asyncio.gather(
        *(reader.credentials(cid) for cid in wanted),
        asyncio.gather(*(reader.row(cid) for cid in ids)),  # rows alone, in the same batches
    )
    assert [row.id for row, _ in loaded] == wanted
    assert [credentials.connection_id for _, credentials in loaded] == wanted
    assert all(credentials.access_token is not None for _, credentials in loaded)
    assert [row.id for row in rows] == ids
    assert reader.answered == len(wanted) + len(ids) and reader.queries < len(wanted)


async def test_an_unknown_connection_fails_only_its_own_callers(live):
    _, connected, _ = await live.connect()
    reader = ConnectionReader(live.gateway)
    found, missing = await asyncio.gather(
        reader.row(connected["connectionId"]), reader.row("conn_nope"), return_exceptions=True
    )
    assert found.id == connected["connectionId"]
    assert isinstance(missing, ResourceNotFound)


async def test_a_read_asked_after_a_write_sees_it(live):
    _, connected, _ = await live.connect()
    connection_id = connected["connectionId"]
    reader = ConnectionReader(live.gateway)
    before = asyncio.ensure_future(reader.row(connection_id))
    await asyncio.sleep(0)  # the first query is under way
    async with live.gateway.transaction() as session:
        await ConnectionRepository(session).set_fields(connection_id, health="warning")
    after = await reader.row(connection_id)
    await before
    assert after.health == "warning"


async def test_reads_keep_working_after_a_missing_connection(live):
    _, connected, _ = await live.connect()
    reader = ConnectionReader(live.gateway)
    for _ in range(3):
        with pytest.raises(ResourceNotFound):
            await reader.credentials("conn_nope")
        row, _ = await reader.credentials(connected["connectionId"])
        assert row.id == connected["connectionId"]


async def test_a_caller_that_gives_up_does_not_stop_the_others(live):
    _, connected, _ = await live.connect()
    connection_id = connected["connectionId"]
    reader = ConnectionReader(live.gateway)
    quitter = asyncio.ensure_future(reader.row(connection_id))
    stayer = asyncio.ensure_future(reader.row(connection_id))
    await asyncio.sleep(0)
    quitter.cancel()
    assert (await stayer).id == connection_id
    assert quitter.cancelled()
    assert (await reader.row(connection_id)).id == connection_id

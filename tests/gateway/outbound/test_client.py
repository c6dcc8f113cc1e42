"""The client's life cycle, defaults, and the errors raised while a body is read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.errors import OutcomeUnknown, Transient
from gateway.outbound import OutboundClient


async def test_close_closes_the_session(upstream):
    _, server = upstream
    client = OutboundClient("meta")
    await client.start()
    async with client.get(str(server.make_url("/x"))) as resp:
        assert resp.status == 200
    session = client._session
    assert session is not None and not session.closed
    await client.close()
    assert session.closed
    assert client.closed
    with pytest.raises(RuntimeError, match="not started"):
        async with client.get(str(server.make_url("/x"))):
            pass
    await client.close()  # twice is fine


async def test_async_with_starts_and_closes(upstream):
    recorder, server = upstream
    async with OutboundClient("meta", user_agent="gw-test/1") as client:
        assert not client.closed
        async with client.put(str(server.make_url("/x")), data=b"raw") as resp:
            assert resp.status == 200
    assert client.closed
    assert recorder.requests[0].headers["User-Agent"] == "gw-test/1"
    assert recorder.requests[0].method == "PUT"
    assert recorder.requests[0].body == b"raw"


async def test_requests_need_a_started_client():
    client = OutboundClient("meta")
    with pytest.raises(RuntimeError, match="not started"):
        async with client.get("https://graph.facebook.com/v25.0/me"):
            pass


@pytest.fixture
async def truncating_server() -> AsyncIterator[str]:
    """Promises 100 bytes of body, sends 7, hangs up."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id": ')
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/x"
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(("method", "error"), [("GET", Transient), ("POST", OutcomeUnknown)])
async def test_body_read_failure_is_categorised(make_client, truncating_server, method, error):
    client = await make_client()
    with pytest.raises(error) as caught:
        async with client.request(method, truncating_server) as resp:
            assert resp.status == 200
            await resp.read()
    assert "reading failed" in str(caught.value)
    assert caught.value.__cause__ is not None


async def test_other_errors_in_the_body_pass_through(upstream, make_client):
    _, server = upstream
    client = await make_client()
    with pytest.raises(KeyError):
        async with client.get(str(server.make_url("/x"))) as resp:
            (await resp.json())["missing"]


async def test_extra_middlewares_see_the_final_headers_once_per_attempt(upstream, make_client):
    recorder, server = upstream
    recorder.then(503)
    seen: list[str | None] = []

    async def signing(req, handler):
        # A plugin's signer (e.g. Meta's appsecret_proof) derives something from the token.
        seen.append(req.headers.get("Authorization"))
        req.headers["X-Proof"] = f"proof-of-{len(seen)}"
        return await handler(req)

    client = await make_client(extra_middlewares=[signing])
    async with client.get(str(server.make_url("/x")), token="t0k") as resp:
        assert resp.status == 200
    assert seen == ["Bearer t0k", "Bearer t0k"]
    assert [r.headers["X-Proof"] for r in recorder.requests] == ["proof-of-1", "proof-of-2"]

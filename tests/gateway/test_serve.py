"""`gateway serve` as an operator runs it: a real process, and SIGTERM drains in-flight requests."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import aiohttp
import pytest

from ..support import free_port, gateway_env, run_gateway, spawn_gateway, wait_for


@pytest.fixture
async def served(tmp_path, installed_example):
    """A `gateway serve` process with the example plugin installed; yields its base URL."""
    port = free_port()
    env = gateway_env(
        tmp_path / "var",
        installed_example,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/serve.db",
        server_shutdown_timeout_seconds="10",
    )
    process = await spawn_gateway("serve", "--port", str(port), env=env, capture=True)
    base = f"http://127.0.0.1:{port}"
    await wait_for(f"{base}/readyz", process)
    yield base, process
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_serve_answers_and_loads_installed_plugins(served):
    base, _ = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert await response.json() == {"status": "ok"}
        async with session.get(f"{base}/openapi.json") as response:
            assert "/api/plugins/example/whoami" in (await response.json())["paths"]


async def test_sigterm_finishes_in_flight_requests_then_exits_cleanly(served):
    base, process = served
    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(session.get(f"{base}/plugins/example/slow?ms=1500"))
        await asyncio.sleep(0.4)  # the request is now being handled
        process.send_signal(signal.SIGTERM)
        response = await in_flight
        assert response.status == 200
        assert await response.json() == {"slept": True}
        response.release()
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    assert b"uvloop)" in stderr  # server.event_loop = "auto", and uvloop is installed
    # What starting made is out of the collector's way (a full pass walked it all).
    assert b"process.startup_frozen" in stdout + stderr
    # Once drained the port is closed: no new work is accepted.
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"{base}/healthz")


def plain_env(tmp_path, **settings: str) -> dict[str, str]:
    """A `gateway` process's environment with the built-in plugins only."""
    settings.setdefault("database_url", f"sqlite+aiosqlite:///{tmp_path}/serve.db")
    return gateway_env(tmp_path / "var", tmp_path, **settings)


@pytest.mark.parametrize("command", [("serve",), ("sandbox", "meta")], ids=" ".join)
async def test_a_taken_port_is_one_clear_error_and_no_banner(tmp_path, command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await run_gateway(
            *command, "--port", str(port), env=plain_env(tmp_path), cwd=tmp_path
        )
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "serving on" not in err and "sandbox meta:" not in err
    assert "gateway.started" not in out + err and "Traceback" not in err
    assert not (tmp_path / "serve.db").exists()  # nothing started, not even the database


async def test_a_database_that_cannot_be_opened_stops_serve_in_one_line(tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    env = plain_env(tmp_path, database_url=f"sqlite+aiosqlite:///{blocker}/x.db")
    code, out, err = await run_gateway("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"error: database {blocker}/x.db: cannot create its directory: File exists: {blocker}"
    )
    assert "serving on" not in err and "gateway.started" not in out + err
    assert "Traceback" not in err


async def test_the_banner_and_started_line_come_once_the_server_is_ready(tmp_path):
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        str(port),
        env=plain_env(tmp_path),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    before: list[str] = []
    try:
        async with asyncio.timeout(120):  # a safety net for a hung child, not a measurement
            async for raw in process.stderr:
                if "serving on" in raw.decode():
                    break
                before.append(raw.decode())
            else:
                pytest.fail("no banner:\n" + "".join(before))
            # Said to be serving, so it is, and ready: no retry.
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/readyz") as response,
            ):
                assert response.status == 200, await response.text()
            after = (await process.stderr.readline()).decode()
        assert before[0] == f"database: {tmp_path}/serve.db\n"
        assert not any("gateway.started" in line for line in before)
        assert '"event": "gateway.started"' in after
    finally:
        process.terminate()
        await process.communicate()


async def test_idle_and_slow_header_connections_are_closed(tmp_path):
    port = free_port()
    env = plain_env(tmp_path, server_idle_timeout_seconds="1")
    process = await spawn_gateway("serve", "--port", str(port), env=env, capture=True)
    try:
        await wait_for(f"http://127.0.0.1:{port}/readyz", process)
        # A request line that never ends, and a connection that never says anything.
        slow = await asyncio.open_connection("127.0.0.1", port)
        slow[1].write(b"GET /healthz HT")
        await slow[1].drain()
        silent = await asyncio.open_connection("127.0.0.1", port)
        # A keep-alive connection, idle after its answer.
        idle = await asyncio.open_connection("127.0.0.1", port)
        idle[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await idle[1].drain()
        for reader, writer in (slow, silent, idle):
            # The bound is generous: only "closed by the server, not left open" is asserted.
            rest = await asyncio.wait_for(reader.read(), timeout=30)
            assert b"healthz" not in rest
            assert rest == b"" or rest.startswith(b"HTTP/1.1 200"), rest[:40]
            writer.close()
    finally:
        process.kill()
        await process.wait()


async def test_serve_answers_an_oversized_request_line_as_a_problem(tmp_path):
    port = free_port()
    process = await spawn_gateway("serve", "--port", str(port), env=plain_env(tmp_path))
    try:
        await wait_for(f"http://127.0.0.1:{port}/readyz", process)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), timeout=30)
        writer.close()
        assert answer.split(b" ")[1] == b"431", answer[:80]
        assert b"Content-Type: application/problem+json" in answer
        assert b"urn:gateway:problem:header_too_large" in answer
    finally:
        process.kill()
        await process.wait()

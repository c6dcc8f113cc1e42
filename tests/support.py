"""Helpers the tests share: free ports, `gateway` subprocesses, waiting for a server to answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway import clock
from gateway.clock import OFFSET_ENV

from .conftest import TEST_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def without_gateway_settings() -> dict[str, str]:
    """This environment less its `GATEWAY_` settings; a shifted clock is kept for every process."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") or k == OFFSET_ENV}


def gateway_env(tmp_path: Path, site: Path, **settings: str) -> dict[str, str]:
    """The environment of a `gateway` process: the example plugin installed, a test vault key."""
    env = without_gateway_settings()
    env.update(
        PYTHONPATH=str(site),
        GATEWAY_CORE_DATA_DIR=str(tmp_path),
        GATEWAY_VAULT_KEYS=TEST_KEY,
        **{f"GATEWAY_{name.upper()}": value for name, value in settings.items()},
    )
    return env


async def run_gateway(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """``python -m gateway ARGS`` run to its end in ``cwd``: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


async def spawn_gateway(
    *args: str, env: dict[str, str], capture: bool = False, log_file: Path | None = None
):
    """``python -m gateway ARGS`` as a child process.

    ``log_file`` takes both output streams: a busy process fills a pipe nobody reads and then
    blocks on its next log line, so long-running children write to a file instead.
    """
    if log_file is not None:
        with log_file.open("ab") as stream:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", *args, env=env, stdout=stream, stderr=stream
            )
    stream = asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env, stdout=stream, stderr=stream
    )


async def wait_for_output(log_file: Path, text: str, process, *, attempts: int = 600) -> None:
    """Poll ``log_file`` until it contains ``text`` (fails the test if ``process`` dies first)."""
    for _ in range(attempts):
        if text in read_log(log_file):
            return
        if process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    if process.returncode is None:
        process.kill()
        await process.wait()
    tail = read_log(log_file)[-2000:]
    pytest.fail(f"{text!r} never appeared in {log_file.name}:\n{tail}")


def read_log(log_file: Path) -> str:
    """What a child process has written to ``log_file`` so far ("" before it exists)."""
    return log_file.read_text(errors="replace") if log_file.exists() else ""


def log_events(log_file: Path, name: str) -> list[dict]:
    """The JSON log lines of one event name that a child process wrote to ``log_file``."""
    found = []
    for line in read_log(log_file).splitlines():
        if not line.startswith("{"):
            continue  # the one-line banners the CLI prints
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == name:
            found.append(entry)
    return found


async def stop_gracefully(process, *, grace: float = 60) -> int:
    """SIGTERM, then wait for the exit code (SIGKILL if it does not stop)."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace)
        except TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode


async def wait_for(url: str, process=None, *, attempts: int = 300) -> aiohttp.ClientResponse:
    """Poll ``url`` until it answers 200 (fails the test if ``process`` dies first)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(attempts):
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        await response.read()
                        return response
            except aiohttp.ClientConnectionError:
                pass
            if process is not None and process.returncode is not None:
                break
            await asyncio.sleep(0.05)
    if process is not None and process.returncode is None:
        process.kill()
    pytest.fail(f"nothing answered 200 at {url}")


async def get_json(url: str) -> dict:
    await wait_for(url)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.json()


class TcpProxy:
    """A TCP relay from a free local port to ``host:port`` that a test can cut and restore.

    ``cut()`` refuses new connections and resets the open ones (a database or a platform
    becoming unreachable); ``restore()`` listens again on the same port. ``response_delay``
    holds every chunk coming back for that many seconds: the request has already arrived and
    been acted on, only its answer is late (what a process killed mid-call leaves behind).
    """

    def __init__(self, host: str, port: int, *, response_delay: float = 0.0) -> None:
        self.upstream = (host, port)
        self.response_delay = response_delay
        self.port = 0
        self.held = 0  # answers being held back right now
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # RST, as a dropped network path looks to the client
        self._writers.clear()

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_reader, client_writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, upstream_writer))
        for task in (
            asyncio.create_task(self._pipe(client_reader, upstream_writer, 0.0)),
            asyncio.create_task(self._pipe(upstream_reader, client_writer, self.response_delay)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader, writer, delay: float) -> None:
        try:
            while data := await reader.read(65536):
                if delay:
                    self.held += 1
                    try:
                        await asyncio.sleep(delay)
                    finally:
                        self.held -= 1
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # one side went away: close the other below
        finally:
            self._writers.discard(writer)
            writer.close()


class FrozenClock(clock.Clock):
    """The gateway's clock stopped at ``at``: what is due stays due, what is not stays not,
    however slowly a loaded machine runs the test (``with clock.use(FrozenClock(...))``)."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def timestamp(self) -> float:
        return self.at

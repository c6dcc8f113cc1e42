"""Helpers the tests share: free ports, `gateway` subprocesses, waiting for a server to answer."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from .conftest import TEST_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gateway_env(tmp_path: Path, site: Path, **settings: str) -> dict[str, str]:
    """The environment of a `gateway` process: the example plugin installed, a test vault key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        PYTHONPATH=str(site),
        GATEWAY_CORE_DATA_DIR=str(tmp_path),
        GATEWAY_VAULT_KEYS=TEST_KEY,
        **{f"GATEWAY_{name.upper()}": value for name, value in settings.items()},
    )
    return env


async def spawn_gateway(*args: str, env: dict[str, str], capture: bool = False):
    """``python -m gateway ARGS`` as a child process."""
    stream = asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env, stdout=stream, stderr=stream
    )


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

"""What aiohttp refuses before any route is answered as problem+json, quoting nothing back."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from gateway.web.protocol import GatewayRunner


async def hello(_request: web.Request) -> web.Response:
    return web.Response(text="hi")


@pytest.fixture
async def port():
    app = web.Application()
    app.router.add_get("/", hello)
    runner = GatewayRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def exchange(port: int, raw: bytes) -> tuple[bytes, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=30)  # the server closes it
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status.encode(), headers, body


SECRET = b"s3cr3t-" * 1300  # over aiohttp's 8190 bytes


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GET /" + SECRET + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431, "header_too_large"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET + b"\r\n\r\n",
            431,
            "header_too_large",
        ),
        (b"\x16\x03\x01 not http\r\n\r\n", 400, "bad_request"),
    ],
    ids=["request line", "header", "not http"],
)
async def test_a_refused_request_is_a_problem(port, raw, status, code):
    line, headers, body = await exchange(port, raw)
    assert line.split(b" ")[1] == str(status).encode()
    assert headers["Content-Type"].startswith("application/problem+json")
    assert headers["Server"] == "gateway"
    assert headers["X-Frame-Options"] == "DENY"
    problem = json.loads(body)
    assert problem["type"] == f"urn:gateway:problem:{code}" and problem["status"] == status
    assert b"s3cr3t" not in body


async def test_a_well_formed_request_is_untouched(port):
    line, _, body = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert line.endswith(b"200 OK") and body == b"hi"

"""Take a server's port before anything starts, and say it serves only once it answers.

A port that is taken then fails first and alone: before the database is opened, the plugins
are started or the workers claim a job, and before any banner claims the server is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..errors import GatewayError
from .protocol import GatewayRunner

BACKLOG = 128  # aiohttp's default


class ListenError(GatewayError):
    """The server cannot listen where it was told to (the port is taken, the host is not ours)."""

    code = "listen_error"
    title = "Cannot listen"


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address of ``host``, bound as aiohttp's own sites bind them.

    Connections that arrive before the server starts wait in the backlog, not refused.

    :raises ListenError: naming the address and the system's reason.
    """
    where = f"{host}:{port}"
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as err:
        raise ListenError(f"cannot listen on {where}: {err.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            # A restarted server need not wait for its predecessor's connections to time out.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # Each family gets its own socket (as asyncio does), so "::" leaves IPv4 alone.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
    except OSError as err:
        for sock in sockets:
            sock.close()
        raise ListenError(f"cannot listen on {where}: {err.strerror or err}") from None
    return sockets


def run_app(
    app: web.Application,
    sockets: list[socket.socket],
    *,
    ready: Callable[[], None],
    loop: asyncio.AbstractEventLoop | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` on ``sockets`` (from :func:`bind`) until SIGINT or SIGTERM, then drain.

    aiohttp's ``run_app`` would do, but it makes its own runner, whose server answers a
    malformed or oversized request in plain text (see ``protocol``); this is the same loop
    with ours. ``ready`` is called once the app has started and the sockets accept requests;
    ``options`` are ``AppRunner``'s (``shutdown_timeout``, ``keepalive_timeout``, ...).
    """
    loop = loop or asyncio.new_event_loop()
    # SIGINT and SIGTERM raise GracefulExit out of the loop; cleanup then drains the requests.
    runner = GatewayRunner(app, handle_signals=True, **options)

    async def serve() -> None:
        await runner.setup()
        try:
            for sock in sockets:
                await web.SockSite(runner, sock, backlog=BACKLOG).start()
            ready()
            await asyncio.Event().wait()  # until a signal
        finally:
            await runner.cleanup()

    main = loop.create_task(serve())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()
            for sock in sockets:  # already closed when the server ran; not when start-up failed
                sock.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left running (as ``asyncio.run`` does), reporting what failed."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {"message": "unhandled exception at shutdown", "exception": task.exception()}
            )


def off_loopback(sockets: list[socket.socket]) -> list[str]:
    """The addresses among ``sockets`` that other machines can reach (not on the loopback)."""
    exposed = []
    for sock in sockets:
        host = sock.getsockname()[0]
        address = ipaddress.ip_address(host.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_loopback:
            exposed.append(host)
    return exposed

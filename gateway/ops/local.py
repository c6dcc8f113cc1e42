"""A throw-away gateway on a local port with its sandboxes, driven over its own HTTP API."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ..admin import create_tenant
from ..connector import Connector
from ..settings import Settings
from ..types import ApiKeySpec, OAuth2Spec
from .browser import ConsentError, browser, consent

TERMINAL = frozenset({"published", "dead", "cancelled"})


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def local_settings(
    settings: Settings, data_dir: Path, port: int, *, workers: int, mounted: bool = False
) -> Settings:
    """``settings`` on a temporary database and port, in sandbox mode, consent pages approving
    at once. A production config's app credentials are not sent to the sandboxes; with
    ``mounted``, every platform is reached at the sandbox mounted in this gateway, whatever
    ``sandbox_url`` the config names."""
    platforms = settings.platforms
    if not settings.sandbox_mode:
        platforms = {
            name: replace(platform, client_id="", client_secret="")
            for name, platform in platforms.items()
        }
    if mounted:
        platforms = {name: replace(p, sandbox_url="") for name, p in platforms.items()}
    return replace(
        settings,
        platforms=platforms,
        core=replace(settings.core, mode="sandbox", data_dir=str(data_dir)),
        server=replace(settings.server, host="127.0.0.1", port=port, public_url=""),
        database=replace(
            settings.database,
            url=f"sqlite+aiosqlite:///{data_dir}/gateway.db",
            migrate_on_start=True,
        ),
        sandbox=replace(settings.sandbox, auto_approve=True),
        connections=replace(settings.connections, background=False),
        webhooks=replace(settings.webhooks, background=False),
        jobs=replace(settings.jobs, concurrency=workers, poll_seconds=0.05),
        alerts=replace(settings.alerts, dlq_webhook_url=""),
        oauth=replace(settings.oauth, allowed_return_urls=()),
    )


def sandbox_api_key(connector: type[Connector], sandbox: Any) -> str | None:
    """A key an API-key platform's sandbox accepts.

    A sandbox may declare one (``demo_api_key``); otherwise one is made from the connector's
    ``key_format`` when it is of the ``prefix-<N hex>`` kind (``ex-<32 hex>``).
    """
    declared = getattr(sandbox, "demo_api_key", None)
    if declared:
        return declared
    spec = connector.auth
    if not isinstance(spec, ApiKeySpec):
        return None
    pattern = re.fullmatch(r"([\w.-]*)<(\d+) hex>([\w.-]*)", spec.key_format.strip())
    if not pattern:
        return None
    prefix, digits, suffix = pattern.groups()
    return prefix + secrets.token_hex(int(digits))[: int(digits)] + suffix


def publishes(connector: type[Connector]) -> bool:
    return connector.publish is not Connector.publish


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class ServedGateway:
    """A gateway served on a local port for the duration of ``async with``, and its API client.

    `gateway validate` and `gateway demo` exercise the product the way a client does (real
    sockets, the public routes). Subclasses say on which settings and as which tenant:
    :class:`LocalGateway` on a throw-away database and the sandboxes, ``LiveGateway``
    (``gateway.ops.live``) on the operator's own config.
    """

    live = False
    # How long a job may take to settle: a real platform answers slower than a sandbox.
    job_wait_seconds = 30.0

    def __init__(self, settings: Settings, *, workers: int = 2, entry_points: bool = True) -> None:
        self._base_settings = settings
        self._workers = workers
        self._entry_points = entry_points
        self._runner: web.AppRunner | None = None
        self.http: aiohttp.ClientSession | None = None
        self.gateway: Any = None
        self.base = ""
        self.key = ""
        # Platforms whose connection was there before this run (validation says so).
        self.reused: set[str] = set()

    def prepare(self, settings: Settings) -> Settings:
        """The settings to serve, and the port to serve them on."""
        raise NotImplementedError

    async def sign_in(self) -> str:
        """An API key of the tenant this run acts as."""
        raise NotImplementedError

    async def sign_out(self) -> None:
        """Undo what :meth:`sign_in` left behind."""

    async def connect(self, platform: str) -> str:
        """Connect the platform's account as a user would; the connection's id.

        :raises LookupError: when this run has no way to (an API key nobody gave).
        """
        raise NotImplementedError

    async def bind(self, runner: web.AppRunner) -> int:
        port = self.gateway.settings.server.port
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return port

    async def __aenter__(self) -> ServedGateway:
        from ..host import Gateway
        from ..web.app import create_app
        from ..web.protocol import GatewayRunner

        self.gateway = Gateway.from_settings(
            self.prepare(self._base_settings), entry_points=self._entry_points
        )
        # The server `gateway serve` runs (a live validation answers real OAuth callbacks).
        self._runner = GatewayRunner(
            create_app(self.gateway),
            access_log=None,
            keepalive_timeout=self.gateway.settings.server.idle_timeout_seconds,
        )
        await self._runner.setup()
        try:
            port = await self.bind(self._runner)
            self.base = f"http://127.0.0.1:{port}"
            # A browser's cookie jar: OAuth callbacks need the cookie the go link sets.
            self.http = browser(timeout=aiohttp.ClientTimeout(total=60))
            self.key = await self.sign_in()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.key:
                await self.sign_out()
        finally:
            if self.http is not None:
                await self.http.close()
            if self._runner is not None:
                await self._runner.cleanup()

    def platforms(self, only: str | None = None) -> list[str]:
        enabled = [n for n in self.gateway.connectors if self.gateway.settings.platform(n).enabled]
        return [n for n in enabled if only is None or n == only]

    def connector(self, platform: str) -> type[Connector]:
        return self.gateway.connectors.get(platform)

    async def api(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202, 204), **kwargs: Any
    ) -> Any:
        """Call the gateway's API as the admin tenant; :raises ApiError: on another status."""
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as r:
            body = await r.json(content_type=None) if r.status != 204 else None
            if r.status not in ok:
                raise ApiError(r.status, body)
            return body

    async def sandbox(self, platform: str, method: str, path: str, **kwargs: Any) -> Any:
        """Call a platform sandbox's control API (``/_control/...``)."""
        root = self.gateway.sandbox_url(platform)
        if root is None:
            raise LookupError(f"{platform} is reached on its real hosts: it has no sandbox here")
        token = self.gateway.settings.sandbox.control_token
        if token:  # the sandboxes answer only its bearers then, this process included
            kwargs["headers"] = {"Authorization": f"Bearer {token}", **kwargs.get("headers", {})}
        async with self.http.request(method, f"{root}/_control/{path}", **kwargs) as response:
            if response.status >= 300:
                raise ApiError(response.status, await response.text())
            return await response.json(content_type=None) if response.status != 204 else None

    async def publish(self, connection_id: str, account: dict, **fields: Any) -> dict:
        body = {"connectionId": connection_id, "accountId": account["id"], **fields}
        headers = {}
        if "idempotency_key" in body:
            headers["Idempotency-Key"] = body.pop("idempotency_key")
        return await self.api("POST", "/api/publish", json=body, headers=headers)

    async def publish_somewhere(
        self,
        connection_id: str,
        accounts: list[dict],
        variants: tuple[dict, ...] = ({},),
        **fields: Any,
    ) -> tuple[dict, dict]:
        """Publish to the first account, in the first form, the platform's check accepts.

        One account can refuse what another takes (an audience without a default sender, a
        platform that needs media): a 422 moves on; anything else, or the last 422, is raised.
        :returns: the 202 answer and the account that took the post.
        """
        refused: ApiError | None = None
        for account in accounts:
            for extra in variants:
                try:
                    accepted = await self.publish(connection_id, account, **extra, **fields)
                except ApiError as err:
                    if err.status != 422:
                        raise
                    refused = err
                    continue
                return accepted, account
        raise refused or ApiError(422, "no account to publish to")

    async def wait_job(
        self,
        job_id: str,
        until: frozenset[str] = TERMINAL,
        within: float | None = None,
        *,
        done: Callable[[dict], Any] | None = None,
    ) -> dict:
        """Poll the job until its status is in ``until``, or ``done(job)`` holds, or the time
        is up; its last state."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (within or self.job_wait_seconds)
        while True:
            job = await self.api("GET", f"/api/jobs/{job_id}")
            if job["status"] in until or (done and done(job)) or loop.time() > deadline:
                return job
            await asyncio.sleep(0.05)


class LocalGateway(ServedGateway):
    """``async with LocalGateway(settings) as local:`` a gateway on a temporary SQLite database
    and the platforms' sandboxes, signed in as admin, so nothing it creates lands in the
    operator's own database or reaches a real platform. ``mounted``: see :func:`local_settings`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int = 2,
        entry_points: bool = True,
        mounted: bool = False,
    ) -> None:
        super().__init__(settings, workers=workers, entry_points=entry_points)
        self._mounted = mounted
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def prepare(self, settings: Settings) -> Settings:
        self._tmp = tempfile.TemporaryDirectory(prefix="gateway-ops-")
        return local_settings(
            settings,
            Path(self._tmp.name),
            free_port(),
            workers=self._workers,
            mounted=self._mounted,
        )

    async def sign_in(self) -> str:
        return (await create_tenant(self.gateway, "operations", admin=True)).api_key

    async def __aexit__(self, *exc: object) -> None:
        try:
            await super().__aexit__(*exc)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()

    async def connect(self, platform: str) -> str:
        """Connect the platform's sandbox account as a user would; the connection's id."""
        connector = self.connector(platform)
        if isinstance(connector.auth, OAuth2Spec):
            return await self._connect_oauth(platform)
        key = sandbox_api_key(connector, self.gateway.sandboxes.get(platform))
        if key is None:
            raise LookupError("its sandbox declares no demo_api_key and key_format is free text")
        body = await self.api(
            "POST", "/api/connections", json={"platform": platform, "apiKey": key}
        )
        return body["id"]

    async def _connect_oauth(self, platform: str) -> str:
        started = await self.api("POST", f"/api/oauth/{platform}/start", json={})
        try:
            callback = await consent(self.http, started["authorizationUrl"])
        except ConsentError as err:
            raise ApiError(502, str(err)) from err
        async with self.http.get(callback, allow_redirects=False) as response:
            body = await response.json(content_type=None)
            if response.status != 200 or "connectionId" not in body:
                raise ApiError(response.status, body)
            return body["connectionId"]

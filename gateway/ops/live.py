"""`gateway validate` on the operator's own config: real credentials, hosts and database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import replace

from aiohttp import web
from sqlalchemy import select

from ..admin import create_key, revoke_key
from ..db.models import TenantRow
from ..db.repositories import TenantRepository
from ..jobs.worker import Workers
from ..settings import Settings
from ..types import OAuth2Spec
from .local import ServedGateway, free_port

# Validation's connections, jobs and posts live in a tenant of their own, so that they never
# mix with a client's and the connections made once are used again on the next run.
VALIDATION_TENANT = "connector-validation"


def api_key_variable(platform: str) -> str:
    """Where an API-key platform's key for validation is read from (never a command-line
    argument: those show in the process list)."""
    return f"VALIDATE_{platform.upper()}_API_KEY"


class LiveGateway(ServedGateway):
    """The operator's config as it is (production mode: real credentials and hosts, the
    operator's database and vault), served for the run and acting as :data:`VALIDATION_TENANT`.

    OAuth platforms are connected once by a person: the run prints the consent link and waits
    up to ``consent_timeout`` seconds for the platform's redirect, which lands at the configured
    public URL (this process when the configured port is free, else the gateway already serving
    it: the OAuth state is in the shared database). Later runs use that connection again.
    """

    live = True
    job_wait_seconds = 180.0

    def __init__(
        self,
        settings: Settings,
        *,
        consent_timeout: float,
        tell: Callable[[str], None],
        workers: int = 2,
    ) -> None:
        super().__init__(settings, workers=workers)
        self.consent_timeout = consent_timeout
        self.tell = tell
        self._key_id = ""

    def prepare(self, settings: Settings) -> Settings:
        # The running gateway keeps its own schedules and deliveries; this run only validates.
        return replace(
            settings,
            connections=replace(settings.connections, background=False),
            webhooks=replace(settings.webhooks, background=False),
            alerts=replace(settings.alerts, dlq_webhook_url=""),
            # Its own workers start once it knows its tenant (see sign_in).
            jobs=replace(settings.jobs, concurrency=0),
        )

    async def bind(self, runner: web.AppRunner) -> int:
        server = self.gateway.settings.server
        try:
            await web.TCPSite(runner, server.host, server.port).start()
            return server.port
        except OSError:
            # `gateway serve` has the port: it answers the platforms' redirects, and this run
            # serves its own requests on another one.
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            return port

    async def sign_in(self) -> str:
        async with self.gateway.session() as session:
            tenant_id = await session.scalar(
                select(TenantRow.id)
                .where(TenantRow.name == VALIDATION_TENANT)
                .order_by(TenantRow.created_at)
                .limit(1)
            )
        if tenant_id is None:
            async with self.gateway.transaction() as session:
                tenant_id = (await TenantRepository(session).create(VALIDATION_TENANT)).id
        issued = await create_key(self.gateway, tenant_id)
        self._key_id = issued.key_id
        # Workers for this tenant's jobs only: the cluster's own workers keep the rest.
        workers = Workers(self.gateway, self._workers)
        workers.claimer.only_tenants = frozenset({tenant_id})
        workers.start()
        self.gateway.workers = workers  # stopped with the gateway
        return issued.api_key

    async def sign_out(self) -> None:
        await revoke_key(self.gateway, self._key_id)

    async def connect(self, platform: str) -> str:
        connections = (await self.api("GET", f"/api/connections?platform={platform}"))["data"]
        active = [c for c in connections if c["status"] == "active"]
        if active:
            self.reused.add(platform)
            return max(active, key=lambda c: c["createdAt"])["id"]
        if not isinstance(self.connector(platform).auth, OAuth2Spec):
            return await self._connect_api_key(platform)
        # One that needs reconnecting is reconnected (same connection, same account).
        stale = [c for c in connections if c["status"] == "needs_reconnect"]
        body = {"connectionId": stale[0]["id"]} if stale else {}
        started = await self.api("POST", f"/api/oauth/{platform}/start", json=body)
        if self.consent_timeout <= 0:
            raise LookupError(
                f"no {platform} connection in tenant {VALIDATION_TENANT!r} yet: run "
                f"`gateway validate --platform {platform} --consent-timeout 300` and open the "
                "link it prints"
            )
        self.tell(
            f"To connect {platform}, open this link, sign in and allow access "
            f"(waiting {self.consent_timeout:.0f} s):\n  {started['authorizationUrl']}"
        )
        return await self._wait_for_consent(platform, {c["id"] for c in active})

    async def _wait_for_consent(self, platform: str, active_before: set[str]) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.consent_timeout
        while loop.time() < deadline:
            await asyncio.sleep(0.5)
            page = await self.api("GET", f"/api/connections?platform={platform}&status=active")
            fresh = [c["id"] for c in page["data"] if c["id"] not in active_before]
            if fresh:
                return fresh[0]
        raise TimeoutError(f"nobody allowed access within {self.consent_timeout:.0f} s")

    async def _connect_api_key(self, platform: str) -> str:
        variable = api_key_variable(platform)
        key = os.environ.get(variable)
        if not key:
            raise LookupError(f"set {variable} to the account's API key")
        body = await self.api(
            "POST", "/api/connections", json={"platform": platform, "apiKey": key}
        )
        return body["id"]

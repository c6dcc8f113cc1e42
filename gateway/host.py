"""The Gateway host object: settings, plugins, registries, storage, vault and clients in one place.

Every hook receives it; the web app and the CLI build one and start it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .connections.scheduler import ConnectionScheduler
from .connections.tokens import TokenManager
from .connector import Connector, ConnectorContext
from .db import migrate
from .db.checkpoint import Checkpointer
from .db.engine import create_engine, create_sessionmaker, is_sqlite, sqlite_file
from .errors import ConfigError, StartupError
from .jobs.analytics import AnalyticsCollector
from .jobs.inserter import JobInserter
from .jobs.worker import Workers
from .netguard import Guard, Policy
from .oauth.client import OAuthClient
from .outbound import OutboundClient, RetryPolicy, Timeouts
from .plugins import LoadedPlugins, call_registration, load_plugins
from .registry import ConnectorRegistry, RouteRegistry, SandboxRegistry
from .settings import Settings
from .telemetry import Telemetry
from .types import Event, OAuth2Spec
from .vault import Vault, dev_key_entry
from .webhooks import outbox
from .webhooks.outbox import EVENTS, Deliverer

log = structlog.get_logger("gateway")


async def await_me_maybe(value: Any) -> Any:
    """Hooks may return a value or an awaitable of one (datasette's pattern)."""
    if inspect.isawaitable(value):
        return await value
    return value


async def first_result(hook_caller: Any, **kwargs: Any) -> Any:
    """Call a firstresult hook whose implementations may be async, awaiting each in turn.

    pluggy stops at the first non-None return, and an un-awaited coroutine is never None, so
    async implementations are called here one by one in pluggy's order.
    """
    for impl in reversed(hook_caller.get_hookimpls()):
        result = impl.function(*[kwargs[name] for name in impl.argnames])
        if inspect.isawaitable(result):  # await_me_maybe inlined: every API request comes here
            result = await result
        if result is not None:
            return result
    return None


class Gateway:
    """One running gateway: what hooks and handlers reach everything through."""

    def __init__(self, settings: Settings, plugins: LoadedPlugins) -> None:
        self.settings = settings
        self.plugins = plugins
        self.pm = plugins.manager
        self.connectors = ConnectorRegistry()
        self.sandboxes = SandboxRegistry()
        self.routes = RouteRegistry()
        self.telemetry = Telemetry.setup(settings.telemetry)
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.writer: async_sessionmaker[AsyncSession] | None = None
        self._write_lock: asyncio.Lock | None = None
        self.clients: dict[str, OutboundClient] = {}
        self.instances: dict[str, Connector] = {}
        self.started = False
        self.draining = False
        self.tokens = TokenManager(self)
        self.scheduler: ConnectionScheduler | None = None
        self.workers: Workers | None = None
        self.analytics: AnalyticsCollector | None = None
        self.inserter = JobInserter(self)
        self.deliverer: Deliverer | None = None
        # Every URL called on a client's behalf goes through it (webhook deliveries, media).
        self.guard = Guard(Policy.from_settings(settings))
        self.checkpointer: Checkpointer | None = None
        call_registration(self.pm, "register_connectors", self.connectors)
        call_registration(self.pm, "register_sandboxes", self.sandboxes)
        call_registration(self.pm, "register_routes", self.routes)
        for info in plugins.infos.values():
            info.platforms = self.connectors.by_plugin(info.name)
        self._check_platform_settings()

    @classmethod
    def from_settings(cls, settings: Settings, *, extra_plugins=(), entry_points=True) -> Gateway:
        plugins = load_plugins(
            disabled=settings.plugins.disabled,
            skip_broken=settings.plugins.skip_broken,
            trace=settings.plugins.trace,
            entry_points=entry_points,
            extra=extra_plugins,
        )
        return cls(settings, plugins)

    def _check_platform_settings(self) -> None:
        from .errors import ConfigError

        for name, platform in self.settings.platforms.items():
            connector = self.connectors.get(name)
            if connector is None:
                if name in self.settings.plugins.disabled:
                    continue
                known = ", ".join(self.connectors) or "none"
                raise ConfigError(f"platforms.{name}", f"no loaded plugin provides it ({known})")
            declared = {spec.name for spec in connector.settings}
            for key in platform.extra:
                if key not in declared:
                    raise ConfigError(f"platforms.{name}.{key}", "unknown key")
        if self.settings.sandbox_mode:
            return
        for name in self.connectors:
            connector = self.connectors.get(name)
            platform = self.settings.platform(name)
            if not platform.enabled:
                continue
            required = [s.name for s in connector.settings if s.required_in_production]
            if isinstance(connector.auth, OAuth2Spec):
                required = ["client_id", "client_secret", *required]
            for key in required:
                if not platform.get(key):
                    raise ConfigError(f"platforms.{name}.{key}", "required in production")

    # --- Lifecycle ---

    async def open_storage(self) -> None:
        """Open the database, migrating it when configured to (the embedded default is)."""
        if self.engine is not None:
            return
        self.engine = create_engine(self.settings.database)
        self.sessionmaker = create_sessionmaker(self.engine)
        # SQLite: a transaction that reads and then writes must take the write lock up front,
        # or it fails with "database is locked" when another writer commits in between.
        self.writer = create_sessionmaker(self.engine.execution_options(sqlite_begin="IMMEDIATE"))
        self._write_lock = asyncio.Lock() if self.uses_sqlite else None
        if self.settings.database.migrate_on_start:
            await migrate.upgrade(self.engine)
        database_file = sqlite_file(self.settings.database.url)
        if database_file is not None:
            self.checkpointer = Checkpointer(database_file)
            self.checkpointer.start()

    async def close_storage(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.stop()
            self.checkpointer = None
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None
            self.sessionmaker = None
            self.writer = None

    async def start(self) -> None:
        """Open storage and the outbound clients, then run the plugins' `startup` hooks."""
        await self.open_storage()
        _ = self.vault  # fail at start, not at the first request, when the key ring is bad
        for name in self.connectors:
            connector_cls = self.connectors.get(name)
            platform = self.settings.platform(name)
            if not platform.enabled:
                continue
            client = OutboundClient(
                name,
                sandbox_url=self.sandbox_url(name),
                rate_limits=connector_cls.rate_limits,
                timeouts=Timeouts(
                    total=self.settings.outbound.total_timeout_seconds,
                    connect=self.settings.outbound.connect_timeout_seconds,
                ),
                retry=RetryPolicy(
                    max_attempts=self.settings.outbound.max_attempts,
                    max_retry_after=self.settings.outbound.max_retry_after_seconds,
                ),
                extra_middlewares=[
                    mw
                    for found in self.pm.hook.extra_client_middlewares(gateway=self, platform=name)
                    for mw in (found or [])
                ],
                tracer_provider=self.telemetry.tracer_provider,
                meter_provider=self.telemetry.meter_provider,
            )
            await client.start()
            self.clients[name] = client
            self.instances[name] = connector_cls(
                ConnectorContext(
                    platform=name,
                    http=client,
                    settings=platform,
                    sandbox_mode=self.settings.sandbox_mode,
                    log=structlog.get_logger(f"gateway.plugins.{name}"),
                    oauth=self._oauth_client(name, connector_cls, client),
                )
            )
        for result in self.pm.hook.startup(gateway=self):
            await await_me_maybe(result)
        if self.settings.connections.background:
            self.scheduler = ConnectionScheduler(self)
            self.scheduler.start()
        self.inserter.start()
        if self.settings.webhooks.background:
            self.deliverer = Deliverer(self, self.settings.webhooks.poll_seconds)
            self.deliverer.start()
        if self.settings.jobs.concurrency > 0:
            self.workers = Workers(self, self.settings.jobs.concurrency)
            self.workers.start()
            self.analytics = AnalyticsCollector(self, self.settings.jobs.poll_seconds)
            self.analytics.start()
        self.started = True

    def log_started(self) -> None:
        """Log `gateway.started`: a server once it listens and is ready, a worker once started.

        Not part of :meth:`start`: a server that cannot take its port must not have said it.
        """
        log.info(
            "gateway.started", plugins=sorted(self.plugins.infos), platforms=list(self.connectors)
        )

    async def stop(self) -> None:
        if self.workers is not None:
            # Finish the jobs in hand; any left past the grace period keep their lease until
            # it runs out, and another worker takes them over.
            await self.workers.stop()
            self.workers = None
        if self.analytics is not None:
            await self.analytics.stop()
            self.analytics = None
        await self.inserter.stop()
        if self.deliverer is not None:
            await self.deliverer.stop()
            self.deliverer = None
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        for result in self.pm.hook.shutdown(gateway=self):
            try:
                await await_me_maybe(result)
            except Exception:
                log.exception("plugin.shutdown_failed")
        for client in self.clients.values():
            await client.close()
        self.clients.clear()
        self.instances.clear()
        await self.close_storage()
        self.started = False

    def _oauth_client(self, name: str, connector_cls, http: OutboundClient) -> OAuthClient | None:
        spec = connector_cls.auth
        if not isinstance(spec, OAuth2Spec):
            return None
        platform = self.settings.platform(name)
        client_id, client_secret = platform.client_id, platform.client_secret
        if self.settings.sandbox_mode and not client_id:
            # Every sandbox registers this app, so sandbox mode needs no credentials.
            client_id, client_secret = f"{name}-sandbox-client", f"{name}-sandbox-secret"
        if not client_id:
            raise ConfigError(f"platforms.{name}.client_id", "required for an OAuth platform")
        return OAuthClient(
            spec,
            client_id=client_id,
            client_secret=client_secret,
            http=http,
            client_id_param=connector_cls.oauth_client_id_param,
            basic_auth=connector_cls.oauth_basic_auth,
        )

    # --- Services for hooks and handlers ---

    @cached_property
    def vault(self) -> Vault:
        """The key ring, built on first use (listing plugins needs no keys)."""
        return build_vault(self.settings)

    def sandbox_url(self, platform: str) -> str | None:
        """Where a platform's hosts are reached in sandbox mode (or when configured explicitly)."""
        configured = self.settings.platform(platform).sandbox_url
        if configured:
            return configured.rstrip("/")
        if self.settings.sandbox_mode and platform in self.sandboxes:
            return f"{self.settings.base_url}/sandbox/{platform}"
        return None

    def connector(self, platform: str) -> Connector | None:
        return self.instances.get(platform)

    def session(self) -> AsyncSession:
        """A session for reading; use :meth:`transaction` to write."""
        if self.sessionmaker is None:
            raise StartupError("the gateway has not been started")
        return self.sessionmaker()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on exit (rolled back on error)."""
        if self.writer is None:
            raise StartupError("the gateway has not been started")
        async with self.write_turn(), self.writer() as session:
            async with session.begin():
                yield session
            # Deliveries staged in the transaction are due now that it committed.
            if session.info.pop(outbox.STAGED, False) and self.deliverer is not None:
                self.deliverer.wake()

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """This process's turn to write: SQLite has one writer at a time (PostgreSQL: no wait).

        Writers queue here, in order, rather than in SQLite's busy handler, which sleeps and
        retries (long tails under load). For a writer that begins its own transaction.
        """
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    def version_of(self, platform: str) -> str:
        owner = self.connectors.owner(platform)
        info = self.plugins.infos.get(owner or "")
        return info.version if info else "0"

    async def emit(self, event: Event) -> None:
        """Tell every `track_event` plugin; a failing observer is logged, never propagated."""
        for impl in self.pm.hook.track_event.get_hookimpls():
            try:
                args = {"gateway": self, "event": event}
                await await_me_maybe(impl.function(*(args[name] for name in impl.argnames)))
            except Exception:
                log.exception(
                    "plugin.track_event_failed", plugin=impl.plugin_name, event_name=event.name
                )

    @cached_property
    def client_events(self) -> frozenset[str]:
        """The events clients can subscribe to: the core's and those the platforms declare
        (fixed once the plugins are loaded)."""
        registry = self.connectors
        declared = (name for platform in registry for name in registry.get(platform).client_events)
        return EVENTS | frozenset(declared)

    @property
    def uses_sqlite(self) -> bool:
        return is_sqlite(self.settings.database.url)


def build_vault(settings: Settings) -> Vault:
    """The configured key ring, or in sandbox mode a development key generated under var/."""
    if settings.vault.keys:
        return Vault.from_entries(settings.vault.keys)
    if not settings.sandbox_mode:
        raise StartupError("config: vault.keys: required outside sandbox mode")
    path = Path(settings.core.data_dir) / settings.vault.dev_key_file
    entry, created = dev_key_entry(path)
    log.warning(
        "vault.dev_key",
        path=str(path),
        created=created,
        detail="sandbox mode: using a development key; configure vault.keys for real data",
    )
    return Vault.from_entries([entry])

"""The `gateway` command: serve, status, migrate, plugins, tenants, keys, vault and sandboxes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

import click

from . import clock
from .db.failures import database_errors, reason_of
from .db.location import describe
from .errors import ConfigError, GatewayError, StartupError
from .eventloop import freeze_startup_objects, loop_factory, loop_name
from .ops.tables import render
from .settings import AuthSettings, Settings, load_settings
from .timefmt import rfc3339

T = TypeVar("T")
EXIT_FAILURE = 1
EXIT_USAGE = 2

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $GATEWAY_CONFIG, else config/gateway.toml).",
)


class Failure(click.ClickException):
    """A one-line error with the contract's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _settings(config_path: str | None, **server: Any) -> Settings:
    overrides = {"server": {k: v for k, v in server.items() if v is not None}}
    return load_settings(config_path, overrides=overrides if overrides["server"] else None)


def _database_settings(config_path: str | None, **server: Any) -> Settings:
    """Settings for a command that uses the configured database, which it names first.

    A CLI and a server that read different configs use different databases without a word
    (a key created in one gets 401 from the other): every such command says which one.
    """
    settings = _settings(config_path, **server)
    _announce_database(settings)
    return settings


def _announce_database(settings: Settings) -> None:
    click.echo(f"database: {describe(settings.database.url)}", err=True)


def _build_gateway(settings: Settings):
    from .host import Gateway
    from .telemetry import configure_logging

    configure_logging(settings.logging)
    return Gateway.from_settings(settings)


def _run(
    coro_factory: Callable[[], Awaitable[T]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run an async command, turning the gateway's errors into one line and an exit code."""
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro_factory())
    except StartupError as err:
        raise Failure(str(err), EXIT_USAGE) from None
    except GatewayError as err:
        raise Failure(err.detail, EXIT_FAILURE) from None


def one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (ConfigError, StartupError) as err:
            raise Failure(str(err), EXIT_USAGE) from None
        except GatewayError as err:
            raise Failure(err.detail, EXIT_FAILURE) from None
        except OSError as err:
            raise Failure(f"{err.strerror or err}", EXIT_FAILURE) from None
        except Exception as err:  # a bug still gets one line; the log has the details
            detail = f"unexpected {type(err).__name__}: {reason_of(err)}"
            raise Failure(detail, EXIT_FAILURE) from None

    return wrapper


async def _with_storage(settings: Settings, action: Callable[[Any], Awaitable[T]]) -> T:
    gateway = _build_gateway(settings)
    with database_errors(settings.database.url):
        await gateway.open_storage()
        try:
            return await action(gateway)
        finally:
            await gateway.close_storage()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="integration-gateway", prog_name="gateway")
def cli() -> None:
    """The integration gateway: one API for Meta, LinkedIn, TikTok, Google Business Profile
    and Mailchimp."""


@cli.command()
@config_option
@click.option("--host", default=None, help="Interface to listen on (default from config).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port to listen on.")
@one_line_errors
def serve(config_path: str | None, host: str | None, port: int | None) -> None:
    """Run the gateway: the HTTP API and its background services."""
    from .web import listen
    from .web.app import create_app, freeze_startup_objects

    settings = _database_settings(config_path, host=host, port=port)
    loop = loop_factory(settings.server.event_loop)()
    gateway = _build_gateway(settings)
    app = create_app(gateway)
    app.on_startup.append(freeze_startup_objects)  # after the gateway's own start
    # The port first: when it is taken, nothing else happens (no migration, no worker).
    sockets = listen.bind(settings.server.host, settings.server.port)
    if settings.sandbox_mode:
        _warn_if_exposed(listen.off_loopback(sockets), settings.sandbox.control_token)

    def ready() -> None:
        # Only now: the listener is bound and /readyz passes (the database answered).
        click.echo(
            f"gateway: serving on {settings.base_url} ({settings.core.mode} mode, "
            f"{loop_name(loop)})",
            err=True,
        )
        gateway.log_started()

    with database_errors(settings.database.url):
        listen.run_app(
            app,
            sockets,
            ready=ready,
            loop=loop,
            shutdown_timeout=settings.server.shutdown_timeout_seconds,
            keepalive_timeout=settings.server.idle_timeout_seconds,
            access_log=None,
        )


def _warn_if_exposed(addresses: list[str], control_token: str) -> None:
    """Say so when sandbox mode listens where other machines reach it.

    The emulators accept their fixed demo credentials and hand out tokens to anyone; the
    operator should know before someone else finds out.
    """
    if not addresses:
        return
    import structlog

    control = (
        "its control API asks for sandbox.control_token"
        if control_token
        else "its control API answers loopback callers only"
    )
    click.echo(
        f"warning: sandbox mode on a non-loopback address ({', '.join(addresses)}): the "
        f"platform emulators are open to other machines ({control}); listen on 127.0.0.1, "
        'or set core.mode = "production"',
        err=True,
    )
    structlog.get_logger("gateway").warning("sandbox.exposed", addresses=addresses)


@cli.command()
@config_option
@click.option("--concurrency", type=click.IntRange(1, 256), default=None, help="Worker tasks.")
@one_line_errors
def worker(config_path: str | None, concurrency: int | None) -> None:
    """Run publish workers and the connection schedulers only (scale-out, no HTTP)."""
    import signal

    settings = _database_settings(config_path)
    if concurrency is not None or settings.jobs.concurrency == 0:
        from dataclasses import replace

        jobs = replace(settings.jobs, concurrency=concurrency or 4)
        settings = replace(settings, jobs=jobs)
    new_loop = loop_factory(settings.server.event_loop)
    gateway = _build_gateway(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        with database_errors(settings.database.url):
            await gateway.start()
        freeze_startup_objects()
        click.echo(
            f"gateway worker: {settings.jobs.concurrency} workers on "
            f"{settings.database.url.split('://')[0]} ({loop_name(loop)})",
            err=True,
        )
        gateway.log_started()
        try:
            await stop.wait()
        finally:
            # Finish the jobs in hand, then release everything.
            await gateway.stop()

    _run(run, new_loop)


@cli.command()
@config_option
@one_line_errors
def migrate(config_path: str | None) -> None:
    """Bring the database schema up to date."""
    from .db import migrate as migrations
    from .db.engine import create_engine

    settings = _database_settings(config_path)

    async def run() -> str | None:
        with database_errors(settings.database.url):
            engine = create_engine(settings.database)
            try:
                await migrations.upgrade(engine)
                return await migrations.current_revision(engine)
            finally:
                await engine.dispose()

    revision = _run(run)
    click.echo(f"database at revision {revision}")


@cli.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@one_line_errors
def status(config_path: str | None, as_json: bool) -> None:
    """What a gateway started here would use, and what is running.

    The config file and the environment variables in force, the mode, the database (its
    password masked), whether it is reachable, its migration level and tenants, and whether
    a gateway answers on the configured port. Changes nothing; exits 0 whatever it finds.
    """
    from .ops import status as report

    settings = _database_settings(config_path)
    if config_path:
        chosen_by = "--config"
    elif os.environ.get("GATEWAY_CONFIG"):
        chosen_by = "GATEWAY_CONFIG"
    else:
        chosen_by = "default"
    found = _run(lambda: report.gather(settings, chosen_by=chosen_by, environ=os.environ))
    click.echo(json.dumps(found, indent=2) if as_json else report.render(found))


@cli.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@one_line_errors
def plugins(config_path: str | None, as_json: bool) -> None:
    """The discovered plugins: name, version, distribution, platforms, capabilities."""
    settings = _settings(config_path)
    gateway = _build_gateway(settings)
    rows = []
    for info in sorted(gateway.plugins.infos.values(), key=lambda i: (i.default, i.name)):
        capabilities = {
            name: gateway.connectors.get(name).capabilities.as_json() for name in info.platforms
        }
        rows.append(
            {
                "name": info.name,
                "version": info.version,
                "distribution": info.distribution,
                "platforms": info.platforms,
                "capabilities": capabilities,
                "hooks": info.hooks,
            }
        )
    if as_json:
        click.echo(json.dumps({"plugins": rows, "skipped": gateway.plugins.skipped}, indent=2))
        return
    table = [
        (
            row["name"],
            row["version"],
            row["distribution"],
            ", ".join(f"{p} ({_summarise(row['capabilities'][p])})" for p in row["platforms"])
            or "-",
        )
        for row in rows
    ]
    table += [(name, "-", "-", f"skipped: {why}") for name, why in gateway.plugins.skipped.items()]
    click.echo(render(("NAME", "VERSION", "DISTRIBUTION", "PLATFORMS / CAPABILITIES"), table))


def _summarise(capabilities: dict[str, Any]) -> str:
    kinds = sorted({k for kinds in capabilities["postKinds"].values() for k in kinds})
    flags = [f for f in ("delete", "analytics", "webhooks", "scheduling") if capabilities[f]]
    return "; ".join(filter(None, [",".join(kinds), ",".join(flags)])) or "no capabilities"


@cli.group()
def tenants() -> None:
    """Tenants (workspaces): create one with its first API key, list them."""


@tenants.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the first key the admin scope.")
@click.option("--json", "as_json", is_flag=True, help='Print {"tenantId", "keyId", "apiKey"}.')
@config_option
@one_line_errors
def tenants_create(name: str, admin: bool, as_json: bool, config_path: str | None) -> None:
    """Create a tenant and print its id, its first key's id and the API key (shown once)."""
    from .admin import create_tenant

    if not name.strip() or len(name) > 200:
        raise click.BadParameter("must be 1 to 200 characters", param_hint="NAME")
    settings = _database_settings(config_path)
    issued = _run(lambda: _with_storage(settings, lambda g: create_tenant(g, name, admin=admin)))
    _print_key(issued, as_json)


@tenants.command("list")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"tenants": [{"tenantId", "name", "createdAt", "activeKeys"}]}.',
)
@config_option
@one_line_errors
def tenants_list(as_json: bool, config_path: str | None) -> None:
    """List the tenants: id, when created, how many unrevoked API keys, name."""
    from .admin import list_tenants

    settings = _database_settings(config_path)
    found = _run(lambda: _with_storage(settings, list_tenants))
    if as_json:
        tenants = [
            {
                "tenantId": t.tenant_id,
                "name": t.name,
                "createdAt": rfc3339(t.created_at),
                "activeKeys": t.active_keys,
            }
            for t in found
        ]
        click.echo(json.dumps({"tenants": tenants}, indent=2))
        return
    if not found:
        click.echo("no tenants (gateway tenants create NAME)")
        return
    rows = [(t.tenant_id, _when(t.created_at), t.active_keys, t.name) for t in found]
    click.echo(render(("TENANT", "CREATED", "ACTIVE KEYS", "NAME"), rows))


@cli.group()
def keys() -> None:
    """API keys: create more, list a tenant's, revoke."""


@keys.command("create")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id (ten_…).")
@click.option("--admin", is_flag=True, help="Give the key the admin scope.")
@click.option("--json", "as_json", is_flag=True, help='Print {"tenantId", "keyId", "apiKey"}.')
@config_option
@one_line_errors
def keys_create(tenant_id: str, admin: bool, as_json: bool, config_path: str | None) -> None:
    """Create another API key for a tenant (shown once)."""
    from .admin import create_key

    settings = _database_settings(config_path)
    issued = _run(lambda: _with_storage(settings, lambda g: create_key(g, tenant_id, admin=admin)))
    _print_key(issued, as_json)


@keys.command("list")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id (ten_…).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"keys": [{"keyId", "admin", "createdAt", "revokedAt"}]}.',
)
@config_option
@one_line_errors
def keys_list(tenant_id: str, as_json: bool, config_path: str | None) -> None:
    """List a tenant's API keys, revoked ones too: id, when created and revoked, scope.

    Never a key itself: it was shown once, when created, and only its hash is stored.
    """
    from .admin import list_keys

    settings = _database_settings(config_path)
    found = _run(lambda: _with_storage(settings, lambda g: list_keys(g, tenant_id)))
    if as_json:
        keys = [
            {
                "keyId": k.key_id,
                "admin": k.admin,
                "createdAt": rfc3339(k.created_at),
                "revokedAt": rfc3339(k.revoked_at),
            }
            for k in found
        ]
        click.echo(json.dumps({"keys": keys}, indent=2))
        return
    rows = [
        (k.key_id, _when(k.created_at), _when(k.revoked_at), "admin" if k.admin else None)
        for k in found
    ]
    click.echo(render(("KEY ID", "CREATED", "REVOKED", "SCOPE"), rows))


def _when(moment: datetime | None) -> str | None:
    """A time for a table: to the second, in UTC."""
    return rfc3339(moment.replace(microsecond=0)) if moment else None


@keys.command(
    "revoke",
    help="Revoke an API key. Running gateways stop accepting it within "
    f"auth.key_cache_seconds ({AuthSettings().key_cache_seconds:g} s by default): "
    "the time they trust a key they verified without reading the database again.",
    short_help="Revoke an API key (effective within auth.key_cache_seconds).",
)
@click.argument("key_id")
@config_option
@one_line_errors
def keys_revoke(key_id: str, config_path: str | None) -> None:
    from .admin import revoke_key

    settings = _database_settings(config_path)
    _run(lambda: _with_storage(settings, lambda g: revoke_key(g, key_id)))
    click.echo(f"revoked {key_id}")
    delay = settings.auth.key_cache_seconds
    if delay > 0:  # this process's own cache is not the servers'
        click.echo(
            f"Running gateways stop accepting it within {delay:g} s (auth.key_cache_seconds).",
            err=True,
        )


def _print_key(issued: Any, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {"tenantId": issued.tenant_id, "keyId": issued.key_id, "apiKey": issued.api_key}
            )
        )
        return
    click.echo(f"tenant:  {issued.tenant_id}")
    click.echo(f"key id:  {issued.key_id}")
    click.echo(f"api key: {issued.api_key}")
    click.echo("Store the API key now: it is not shown again.", err=True)


@cli.group()
def dlq() -> None:
    """The dead-letter queue."""


@dlq.command("audit")
@config_option
@one_line_errors
def dlq_audit(config_path: str | None) -> None:
    """Summarise dead jobs by platform and reason now (it also runs once a day)."""
    from .jobs.audit import audit_dead_letters

    settings = _database_settings(config_path)
    summary = _run(lambda: _with_storage(settings, audit_dead_letters))
    click.echo(json.dumps(summary, indent=2))


@cli.command()
@config_option
@click.option("--platform", default=None, help="Validate this platform only (default: all).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default="logs/connector_test_results.json",
    show_default=True,
    help="Where to write the JSON report.",
)
@click.option("--no-publish", is_flag=True, help="Skip the checks that publish posts.")
@click.option(
    "--sandbox",
    "force_sandbox",
    is_flag=True,
    help="Validate against the sandboxes even when the config has real credentials.",
)
@click.option(
    "--consent-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Live runs: seconds to wait for a person to allow access to an OAuth platform "
    "[default: 300 on a terminal, 0 in a pipe].",
)
@one_line_errors
def validate(
    config_path: str | None,
    platform: str | None,
    output: str,
    no_publish: bool,
    force_sandbox: bool,
    consent_timeout: float | None,
) -> None:
    """Validate every platform's connector; exit 1 if a check fails.

    On a sandbox config, against the platforms' sandboxes on a throw-away database. On a
    production config, against the live platforms with its real credentials, as the tenant
    'connector-validation' in its own database (the first run asks a person to allow access
    to each OAuth platform; API-key platforms read VALIDATE_<PLATFORM>_API_KEY); checks that
    need injected faults still run on the sandboxes.
    """
    import contextlib
    import sys
    from pathlib import Path

    from .ops import validate as validation
    from .ops.live import LiveGateway
    from .ops.local import LocalGateway
    from .ops.progress import Progress

    settings = _settings(config_path)
    _quiet_logs(settings)
    live = not (settings.sandbox_mode or force_sandbox)
    if live:  # a sandbox run uses a throw-away database, not the configured one
        _announce_database(settings)
    if consent_timeout is None:
        consent_timeout = 300.0 if sys.stdin.isatty() and sys.stderr.isatty() else 0.0
    progress = Progress()

    def tell(text: str) -> None:
        progress.clear()
        click.echo(text, err=True)

    async def run() -> dict[str, Any]:
        async with contextlib.AsyncExitStack() as stack:
            # In a live run, faults are injected here: in the sandboxes this process mounts.
            sandboxes = await stack.enter_async_context(LocalGateway(settings, mounted=live))
            local = sandboxes
            if live:
                with database_errors(settings.database.url):
                    local = await stack.enter_async_context(
                        LiveGateway(settings, consent_timeout=consent_timeout, tell=tell)
                    )
            platforms = local.platforms(platform)
            if not platforms:
                known = ", ".join(local.platforms()) or "none"
                raise Failure(f"no enabled platform {platform!r} (installed: {known})", EXIT_USAGE)
            where = "live platforms, as tenant 'connector-validation'" if live else "sandboxes"
            tell(f"Validating {', '.join(platforms)} against the {where}.")
            return await validation.validate(
                local,
                platforms,
                publish=not no_publish,
                progress=progress,
                sandboxes=sandboxes,
            )

    report = _run(run)
    validation.write_report(report, Path(output))
    click.echo(validation.table(report))
    click.echo(f"report: {output}")
    failures = validation.failed(report)
    if failures:
        raise Failure(f"{len(failures)} check(s) failed: {', '.join(failures)}", EXIT_FAILURE)


@cli.command()
@config_option
@one_line_errors
def demo(config_path: str | None) -> None:
    """A guided tour: connect every sandbox, publish, watch the jobs, analytics, a DLQ replay."""
    import time

    from .ops.demo import run_demo
    from .ops.local import LocalGateway
    from .ops.progress import Progress

    settings = _settings(config_path)
    _quiet_logs(settings)
    started = time.perf_counter()

    async def run() -> dict[str, Any]:
        async with LocalGateway(settings) as local:
            if not local.platforms():
                raise Failure("no platform plugin is installed or enabled", EXIT_USAGE)
            return await run_demo(local, click.echo, Progress())

    _run(run)
    click.echo(
        f"\nDone in {time.perf_counter() - started:.1f} s. Next: `gateway serve`, then /dashboard."
    )


def _quiet_logs(settings: Settings) -> None:
    """Tables and progress are the output; the gateway's own info lines would bury them."""
    from dataclasses import replace

    from .telemetry import configure_logging

    configure_logging(replace(settings.logging, level="error"))


@cli.group()
def vault() -> None:
    """The token vault: keys and rotation."""


@vault.command("rotate")
@config_option
@one_line_errors
def vault_rotate(config_path: str | None) -> None:
    """Re-seal every stored secret under the newest key (safe while the gateway runs)."""
    from .admin import rotate_vault
    from .ops.progress import Progress

    progress = Progress()

    def rotate(gateway: Any) -> Any:
        return rotate_vault(gateway, on_batch=lambda n: progress.step(f"re-sealed {n} secrets"))

    settings = _database_settings(config_path)
    try:
        report = _run(lambda: _with_storage(settings, rotate))
    finally:
        progress.clear()
    click.echo(f"re-sealed {report.resealed} secrets under key {report.active_key_id!r}")
    if report.remaining:
        raise Failure(
            f"{report.remaining} secrets are still under an older key (written meanwhile "
            "by a gateway whose first key is older?); run again",
            EXIT_FAILURE,
        )


@vault.command("generate-key")
@click.option("--id", "key_id", default=None, help="Key id (default: k<date>).")
def vault_generate_key(key_id: str | None) -> None:
    """Print a new key in the `kid:base64key` form that vault.keys takes."""

    from .vault import generate_key, is_development_key

    if key_id is not None and is_development_key(key_id):
        # Production refuses such an id: the key would be unusable where it is needed.
        raise Failure(
            f"key id {key_id!r} marks sandbox mode's development key; choose another", EXIT_USAGE
        )
    click.echo(f"{key_id or clock.now().strftime('k%Y%m%d')}:{generate_key()}")


def _webhook_target(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from .sandbox import ControlInputError, WebhookTargets

    if value is None:
        return None
    try:
        return WebhookTargets.only(value)
    except ControlInputError as err:
        raise click.BadParameter(err.message) from None


@cli.command()
@click.argument("platform")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8081, show_default=True)
@click.option("--auto-approve", is_flag=True, help="Approve OAuth consent without asking.")
@click.option(
    "--control-token",
    default=None,
    help="Answer the control API (/_control/) only with `Authorization: Bearer TOKEN`, from "
    "any address [default: sandbox.control_token; unset: loopback callers only].",
)
@click.option(
    "--webhook-target",
    default=None,
    callback=_webhook_target,
    help="The one URL `POST /_control/webhooks` sends to [default: none, webhooks refused].",
)
@config_option
@one_line_errors
def sandbox(
    platform: str,
    host: str,
    port: int,
    auto_approve: bool,
    control_token: str | None,
    webhook_target: Any,
    config_path: str | None,
) -> None:
    """Run one platform's sandbox on its own."""
    gateway = _build_gateway(_settings(config_path))
    sandbox_cls = gateway.sandboxes.get(platform)
    if sandbox_cls is None:
        known = ", ".join(gateway.sandboxes) or "none"
        raise Failure(f"no sandbox for platform {platform!r} (installed: {known})", EXIT_USAGE)
    options = gateway.settings.sandbox
    emulator = sandbox_cls(
        auto_approve=auto_approve or options.auto_approve,
        control_token=control_token or options.control_token or None,
        webhook_targets=webhook_target,
    )
    emulator.run_standalone(
        host, port, ready=lambda: click.echo(f"sandbox {platform}: http://{host}:{port}/", err=True)
    )


def _register_plugin_commands() -> None:
    """Let plugins add subcommands; a broken plugin must not take the whole CLI down."""
    from .plugins import load_plugins

    try:
        loaded = load_plugins(skip_broken=True, quiet=True)
    except GatewayError:
        return
    loaded.manager.hook.register_commands(cli=cli)


def main(argv: list[str] | None = None) -> None:
    from .settings import LoggingSettings
    from .telemetry import configure_logging

    # Until a command reads its config, log to stderr so stdout stays clean for --json output.
    configure_logging(LoggingSettings())
    _register_plugin_commands()
    try:
        cli.main(args=argv, prog_name="gateway", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(EXIT_FAILURE)

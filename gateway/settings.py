"""Load config/*.toml plus the environment into frozen, typed settings with one-line errors."""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import clock
from .errors import ConfigError
from .eventloop import CHOICES as LOOP_CHOICES
from .netguard.policy import parse_allowed
from .vault import is_development_key

DEFAULT_CONFIG = Path("config/gateway.toml")
ENV_PREFIX = "GATEWAY_"
# Variables that are not `GATEWAY_<SECTION>_<KEY>` overrides.
RESERVED_ENV = frozenset({"GATEWAY_CONFIG", clock.OFFSET_ENV})
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class CoreSettings:
    mode: str = "sandbox"  # "sandbox": plugins talk to their emulators; "production": real hosts
    data_dir: str = "var"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # how browsers and platforms reach us; default http://host:port
    shutdown_timeout_seconds: float = 30.0
    # A connection that has not sent a whole request line and headers this long after it
    # opened, or after its last answer, is closed: idle and slow-header connections hold a
    # socket each (aiohttp's default is 75 s, and a trickled request line never times out
    # sooner).
    idle_timeout_seconds: float = 15.0
    max_body_bytes: int = 1_048_576
    event_loop: str = "auto"  # "auto" (uvloop where installed), "uvloop" or "asyncio"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///var/gateway.db"
    migrate_on_start: bool = True
    pool_size: int = 10
    busy_timeout_ms: int = 5000
    # SQLite: FULL syncs every commit, so an accepted job survives a power cut, not only a
    # crash of the process (NORMAL, in WAL mode); group commits keep that cheap.
    sqlite_synchronous: str = "full"
    echo: bool = False


@dataclass(frozen=True, slots=True)
class VaultSettings:
    # "kid:base64-32-byte-key" entries; the first one seals, all of them open.
    keys: tuple[str, ...] = ()
    # Sandbox mode only: where a development key is generated when `keys` is empty.
    dev_key_file: str = "vault.key"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    # How long a verified API key is trusted without a database read. A key revoked through
    # this process stops at once; one revoked elsewhere (the CLI) within this many seconds.
    # Unknown key ids are remembered as unknown for as long.
    key_cache_seconds: float = 5.0
    # Failed authentications one client address may make in a window (then 429); 0: no limit.
    failure_limit: int = 20
    failure_window_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class PluginSettings:
    disabled: tuple[str, ...] = ()
    skip_broken: bool = False
    trace: bool = False


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    # The emulators' consent pages approve at once (demos, tests) instead of asking.
    auto_approve: bool = False
    # Unset: the control API (`/sandbox/<platform>/_control/`) answers loopback callers only.
    # Set: it answers any caller presenting `Authorization: Bearer <token>`, and no other.
    control_token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class ForTestingSettings:
    # For testing a plugin's production path against its emulator standing in for the live
    # platform: production mode then honours `platforms.<p>.sandbox_url` (and sends the app's
    # credentials there). Never for a deployment.
    production_against_emulators: bool = False


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "info"
    format: str = "auto"  # "auto": readable on a terminal, JSON otherwise; or "json" / "console"


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    service_name: str = "integration-gateway"
    otlp_endpoint: str = ""  # e.g. http://collector:4318; empty: no export
    metrics: bool = True


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    # returnUrl prefixes a client may send its users back to (no open redirect).
    allowed_return_urls: tuple[str, ...] = ()
    state_ttl_seconds: int = 600


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    # Health checks: every connection once per interval, spread evenly over it.
    health_interval_seconds: float = 6 * 3600
    slow_check_ms: float = 2000.0
    expiry_warning_days: float = 7.0
    # The background loops (refresh ahead of expiry, due health checks) wake this often.
    poll_seconds: float = 30.0
    background: bool = True
    max_concurrent_checks: int = 10
    # Exactly one process refreshes a connection; it holds this lease while it does.
    refresh_lease_seconds: float = 30.0
    # After a failed refresh, wait before the next try (doubling up to the max).
    refresh_cooldown_seconds: float = 30.0
    refresh_cooldown_max_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class JobSettings:
    # Workers in this process (0: none; run `gateway worker` processes instead).
    concurrency: int = 4
    poll_seconds: float = 1.0
    lease_seconds: float = 60.0
    # Waits before the 2nd, 3rd, 4th... attempt; the last one repeats. Jitter is a fraction.
    backoff_seconds: tuple[float, ...] = (1.0, 3.0, 9.0, 27.0)
    backoff_jitter: float = 0.2
    max_attempts: int = 4
    max_age_days: float = 7.0
    schedule_horizon_days: float = 365.0


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    # Deliver client webhooks from this process (the outbox is shared by all processes).
    background: bool = True
    poll_seconds: float = 1.0
    # Active subscriptions a tenant may have: each costs a send per event.
    max_endpoints_per_tenant: int = 20


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    # URLs the gateway calls for a client (webhook endpoints, media) may be on loopback,
    # private or unique-local addresses. Unset: on in sandbox mode (a developer's local
    # receiver), off in production. Link-local and metadata addresses are refused regardless.
    allow_private_targets: bool | None = None
    # Host names (`*.corp.example` for a domain's hosts) or IP addresses/networks an operator
    # trusts although they are not public; never opens link-local or metadata addresses.
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertSettings:
    # A Slack-compatible incoming webhook that receives the daily DLQ audit as {"text": ...}.
    # The URL is the credential (its path is the secret): kept out of repr and logs.
    dlq_webhook_url: str = field(default="", repr=False)
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    total_timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    max_attempts: int = 3
    max_retry_after_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    """One `[platforms.<name>]` section: keys every platform has, plus its connector's own."""

    enabled: bool = True
    sandbox_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    api_version: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        if key in PLATFORM_CORE_KEYS:
            return getattr(self, key)
        return self.extra.get(key, default)


PLATFORM_CORE_KEYS = frozenset(
    {"enabled", "sandbox_url", "client_id", "client_secret", "api_version"}
)


@dataclass(frozen=True, slots=True)
class Settings:
    core: CoreSettings = CoreSettings()
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    vault: VaultSettings = VaultSettings()
    auth: AuthSettings = AuthSettings()
    plugins: PluginSettings = PluginSettings()
    sandbox: SandboxSettings = SandboxSettings()
    testing: ForTestingSettings = ForTestingSettings()
    logging: LoggingSettings = LoggingSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    oauth: OAuthSettings = OAuthSettings()
    connections: ConnectionSettings = ConnectionSettings()
    jobs: JobSettings = JobSettings()
    webhooks: WebhookSettings = WebhookSettings()
    outbound: OutboundSettings = OutboundSettings()
    alerts: AlertSettings = AlertSettings()
    security: SecuritySettings = SecuritySettings()
    platforms: Mapping[str, PlatformSettings] = field(default_factory=dict)
    source: str = "<defaults>"

    @property
    def sandbox_mode(self) -> bool:
        return self.core.mode == "sandbox"

    @property
    def allow_private_targets(self) -> bool:
        """`security.allow_private_targets`, or the mode's default when it is not set."""
        chosen = self.security.allow_private_targets
        return self.sandbox_mode if chosen is None else chosen

    @property
    def data_path(self) -> Path:
        return Path(self.core.data_dir)

    @property
    def base_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        return f"http://{self.server.host}:{self.server.port}"

    def platform(self, name: str) -> PlatformSettings:
        return self.platforms.get(name) or PlatformSettings()


SECTIONS: dict[str, type] = {
    name: hint
    for name, hint in typing.get_type_hints(Settings).items()
    if name not in ("platforms", "source")
}


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(key: str, value: Any, hint: Any, *, from_env: bool) -> Any:
    """Check ``value`` against the annotation ``hint``; strings from the environment are parsed."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if hint in (int, float):
        # A whole number is a fine float; a float is not a fine whole number; a bool is neither.
        accepted = (int, float) if hint is float else (int,)
        if from_env and isinstance(value, str):
            try:
                return hint(value)
            except ValueError:
                pass
        if isinstance(value, accepted) and not isinstance(value, bool):
            return hint(value)
        kind = "a whole number" if hint is int else "a number"
        raise ConfigError(key, f"expected {kind}, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"expected a string, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            # A list written as one string (environment, or `${VAR}`): comma-separated.
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint)
        return tuple(
            _coerce(f"{key}[{i}]", v, item_hint, from_env=from_env) for i, v in enumerate(value)
        )
    if origin in (types.UnionType, typing.Union):
        # `X | None`: None is "not set" (a default only: TOML has no null), else an X.
        arms = [arm for arm in typing.get_args(hint) if arm is not type(None)]
        if len(arms) == 1 and len(typing.get_args(hint)) == 2:
            return _coerce(key, value, arms[0], from_env=from_env)
        raise ConfigError(key, "unsupported setting type")
    return value


def _interpolate(key: str, value: Any, environ: Mapping[str, str]) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in strings; a missing variable is an error."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(key, f"environment variable {name} is not set")

        return _INTERPOLATION.sub(replace, value)
    if isinstance(value, list):
        return [_interpolate(f"{key}[{i}]", v, environ) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _interpolate(f"{key}.{k}", v, environ) for k, v in value.items()}
    return value


def _build_section(name: str, cls: type, raw: Any, env_keys: set[str]) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(name, "expected a table")
    hints = _type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{name}.{key}", f"unknown key (known: {known})")
        full = f"{name}.{key}"
        values[key] = _coerce(full, value, hints[key], from_env=full in env_keys)
    return cls(**values)


def _build_platform(name: str, raw: Any, env_keys: set[str]) -> PlatformSettings:
    if not isinstance(raw, dict):
        raise ConfigError(f"platforms.{name}", "expected a table")
    hints = _type_hints(PlatformSettings)
    core, extra = {}, {}
    for key, value in raw.items():
        full = f"platforms.{name}.{key}"
        if key in PLATFORM_CORE_KEYS:
            core[key] = _coerce(full, value, hints[key], from_env=full in env_keys)
        else:
            # Connector-specific keys are checked once the plugins have declared them.
            extra[key] = value
    return PlatformSettings(**core, extra=extra)


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> set[str]:
    """Merge `GATEWAY_<SECTION>_<KEY>` variables into ``raw``; returns the dotted keys they set."""
    touched: set[str] = set()
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX) or var in RESERVED_ENV:
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        if rest.startswith("platforms_"):
            platform, _, key = rest[len("platforms_") :].partition("_")
            if not platform or not key:
                raise ConfigError(var, "expected GATEWAY_PLATFORMS_<NAME>_<KEY>")
            raw.setdefault("platforms", {}).setdefault(platform, {})[key] = value
            touched.add(f"platforms.{platform}.{key}")
            continue
        for section in sorted(SECTIONS, key=len, reverse=True):
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                raw.setdefault(section, {})[key] = value
                touched.add(f"{section}.{key}")
                break
        else:
            raise ConfigError(var, f"unknown setting (sections: {', '.join(sorted(SECTIONS))})")
    return touched


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read the config file (``path``, else `GATEWAY_CONFIG`, else the embedded default).

    :raises ConfigError: naming the key and what is wrong with it.
    """
    environ = os.environ if environ is None else environ
    chosen = Path(path or environ.get("GATEWAY_CONFIG") or DEFAULT_CONFIG)
    raw: dict[str, Any] = {}
    if chosen.exists():
        try:
            raw = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(str(chosen), f"not valid TOML ({err})") from None
    elif path or environ.get("GATEWAY_CONFIG"):
        raise ConfigError(str(chosen), "config file not found")
    raw = {key: _interpolate(key, value, environ) for key, value in raw.items()}
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    env_keys = _apply_env_overrides(raw, environ)
    return settings_from_mapping(raw, env_keys=env_keys, source=str(chosen))


def settings_from_mapping(
    raw: Mapping[str, Any], *, env_keys: set[str] | None = None, source: str = "<mapping>"
) -> Settings:
    """Build settings from an already-parsed mapping (tests, and `load_settings`)."""
    env_keys = env_keys or set()
    values: dict[str, Any] = {}
    for name, section in raw.items():
        if name == "platforms":
            if not isinstance(section, dict):
                raise ConfigError("platforms", "expected a table of platform tables")
            values["platforms"] = {p: _build_platform(p, v, env_keys) for p, v in section.items()}
        elif name in SECTIONS:
            values[name] = _build_section(name, SECTIONS[name], section, env_keys)
        else:
            raise ConfigError(
                name, f"unknown section (known: {', '.join(sorted(SECTIONS))}, platforms)"
            )
    settings = Settings(**values, source=source)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.core.mode not in ("sandbox", "production"):
        raise ConfigError(
            "core.mode", f"must be 'sandbox' or 'production', got {settings.core.mode!r}"
        )
    if not 0 < settings.server.port < 65536:
        raise ConfigError("server.port", f"must be between 1 and 65535, got {settings.server.port}")
    if settings.server.event_loop not in LOOP_CHOICES:
        raise ConfigError("server.event_loop", "must be 'auto', 'uvloop' or 'asyncio'")
    if settings.logging.format not in ("auto", "json", "console"):
        raise ConfigError("logging.format", "must be 'auto', 'json' or 'console'")
    if settings.logging.level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError("logging.level", "must be debug, info, warning or error")
    url = settings.database.url
    if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
        raise ConfigError(
            "database.url", "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    if settings.database.sqlite_synchronous.lower() not in ("normal", "full", "extra"):
        raise ConfigError("database.sqlite_synchronous", "must be 'normal', 'full' or 'extra'")
    if settings.auth.key_cache_seconds < 0:
        raise ConfigError("auth.key_cache_seconds", "must be 0 (no cache) or more")
    if settings.auth.failure_limit < 0:
        raise ConfigError("auth.failure_limit", "must be 0 (no limit) or more")
    if settings.auth.failure_window_seconds <= 0:
        raise ConfigError("auth.failure_window_seconds", "must be more than 0")
    if settings.server.idle_timeout_seconds <= 0:
        raise ConfigError("server.idle_timeout_seconds", "must be more than 0")
    if settings.jobs.max_attempts < 1 or not settings.jobs.backoff_seconds:
        raise ConfigError("jobs.max_attempts", "needs at least 1 attempt and one backoff step")
    if settings.jobs.concurrency < 0:
        raise ConfigError("jobs.concurrency", "must be 0 or more")
    if settings.outbound.max_attempts < 1:
        raise ConfigError("outbound.max_attempts", "must be at least 1")
    if not settings.sandbox_mode:
        _validate_production(settings)
    alert_url = settings.alerts.dlq_webhook_url
    if alert_url and not re.match(r"^https?://[^/]+", alert_url):
        # Never echo the value: the URL is a secret.
        raise ConfigError("alerts.dlq_webhook_url", "must be an http(s) URL")
    if settings.webhooks.max_endpoints_per_tenant < 1:
        raise ConfigError("webhooks.max_endpoints_per_tenant", "must be at least 1")
    for entry in settings.security.allowed_hosts:
        try:
            parse_allowed(entry)
        except ValueError as err:
            raise ConfigError(
                "security.allowed_hosts",
                f"{entry!r} is not a host name, *.domain, IP address or network ({err})",
            ) from None
    for prefix in settings.oauth.allowed_return_urls:
        if not re.match(r"^https?://[^/]+", prefix):
            raise ConfigError("oauth.allowed_return_urls", f"{prefix!r} is not an http(s) URL")


def _validate_production(settings: Settings) -> None:
    """Production refuses what only sandbox mode may use, naming the setting."""
    if not settings.vault.keys:
        raise ConfigError("vault.keys", "required outside sandbox mode (set GATEWAY_VAULT_KEYS)")
    for entry in settings.vault.keys:
        key_id = entry.partition(":")[0]
        if is_development_key(key_id):
            raise ConfigError(
                "vault.keys",
                f"key {key_id!r} is a development key (sandbox mode's); production needs its "
                "own: `gateway vault generate-key`",
            )
    if settings.testing.production_against_emulators:
        return
    for name, platform in settings.platforms.items():
        if platform.sandbox_url:
            # The platform's client secret would be posted to it.
            raise ConfigError(
                f"platforms.{name}.sandbox_url",
                "not allowed in production (the platform's credentials would go there); "
                'remove it, or use core.mode = "sandbox"',
            )

"""`gateway status`: the config in force, its database, migrations and tenants, and its server.

Read-only and forgiving: a database that cannot be reached, a schema not yet created or a server
that is down is what it reports, never what stops it. It opens no gateway (no plugins, no
migrations) and creates no SQLite file.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from ..db import migrate
from ..db.engine import create_engine, create_sessionmaker, is_sqlite, sqlite_file
from ..db.failures import DatabaseFailure, database_errors
from ..db.location import describe
from ..db.repositories import TenantRepository
from ..settings import ENV_PREFIX, RESERVED_ENV, Settings
from ..timefmt import rfc3339
from . import tables

SHOWN_TENANTS = 20
SERVER_TIMEOUT_SECONDS = 2.0
# SQLite answers at once or says why; a server on the network may just never answer.
DATABASE_TIMEOUT_SECONDS = 5.0
# Where to knock when the server listens on every interface.
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


async def gather(settings: Settings, *, chosen_by: str, environ: Mapping[str, str]) -> dict:
    """The report, as `gateway status --json` prints it.

    ``chosen_by`` says what picked the config file: ``--config``, ``GATEWAY_CONFIG`` or
    ``default``.
    """
    database, tenants = await _database(settings)
    return {
        "config": _config(settings, chosen_by, environ),
        "mode": settings.core.mode,
        "server": await _server(settings),
        "database": database,
        "tenants": tenants,
    }


def _config(settings: Settings, chosen_by: str, environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "file": os.path.abspath(settings.source),
        "found": Path(settings.source).is_file(),
        "chosenBy": chosen_by,
        # Names only: the values may be secrets.
        "environment": sorted(
            name for name in environ if name.startswith(ENV_PREFIX) and name not in RESERVED_ENV
        ),
    }


async def _server(settings: Settings) -> dict[str, Any]:
    host, port = settings.server.host, settings.server.port
    knock = _WILDCARDS.get(host, host)
    url = f"http://[{knock}]:{port}/healthz" if ":" in knock else f"http://{knock}:{port}/healthz"
    report: dict[str, Any] = {
        "host": host,
        "port": port,
        "publicUrl": settings.base_url,
        "probed": url,
        "answering": False,
        "detail": "",
    }
    timeout = aiohttp.ClientTimeout(total=SERVER_TIMEOUT_SECONDS)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as answer:
            body = await answer.json(content_type=None) if answer.status == 200 else None
    except TimeoutError:
        report["detail"] = f"no answer within {SERVER_TIMEOUT_SECONDS:g} s"
        return report
    except aiohttp.ClientConnectorError as err:
        reason = os.strerror(err.os_error.errno) if err.os_error.errno else str(err.os_error)
        report["detail"] = f"nothing answers ({reason.lower()})"
        return report
    except (aiohttp.ClientError, ValueError) as err:
        report["detail"] = f"not a gateway ({type(err).__name__})"
        return report
    if body == {"status": "ok"}:
        report["answering"] = True
        report["detail"] = "a gateway answers"
    else:
        report["detail"] = f"something else answers (HTTP {answer.status})"
    return report


async def _database(settings: Settings) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The database part of the report, and its tenants when it has any to show."""
    url = settings.database.url
    report: dict[str, Any] = {
        "location": describe(url),
        "reachable": False,
        "error": None,
        "revision": None,
        "head": migrate.head_revision(),
        "upToDate": False,
    }
    if _not_created(url):
        # Connecting would create it: say so instead.
        report["error"] = "no such file yet (gateway migrate creates it, as gateway serve does)"
        return report, None
    tenants = None
    try:
        with database_errors(url):
            engine = create_engine(settings.database)
            try:
                async with asyncio.timeout(None if is_sqlite(url) else DATABASE_TIMEOUT_SECONDS):
                    report["revision"] = await migrate.current_revision(engine)
                    report["reachable"] = True
                    report["upToDate"] = report["revision"] == report["head"]
                    if report["revision"] is not None:
                        tenants = await _tenants(engine)
            finally:
                await engine.dispose()
    except DatabaseFailure as err:
        report["error"] = err.reason
    except TimeoutError:
        report["error"] = f"no answer within {DATABASE_TIMEOUT_SECONDS:g} s"
    return report, tenants


def _not_created(url: str) -> bool:
    """A SQLite database whose file does not exist yet."""
    file = sqlite_file(url)
    return file is not None and not Path(file).exists()


async def _tenants(engine: Any) -> dict[str, Any]:
    async with create_sessionmaker(engine)() as session:
        repository = TenantRepository(session)
        count = await repository.count()
        listing = await repository.listing(limit=SHOWN_TENANTS)
    return {
        "count": count,
        "items": [
            {
                "tenantId": row.id,
                "name": row.name,
                "createdAt": rfc3339(row.created_at),
                "activeKeys": keys,
            }
            for row, keys in listing
        ],
    }


def render(report: dict[str, Any]) -> str:
    """The report for a person: one line per part, the tenants indented below theirs."""
    config, server, database = report["config"], report["server"], report["database"]
    overrides = ", ".join(config["environment"])
    mode = report["mode"]
    lines = [
        (
            "config",
            f"{config['file']} ({config['chosenBy']})"
            + ("" if config["found"] else ", not found: built-in defaults")
            + (f"; overridden by {overrides}" if overrides else ""),
        ),
        (
            "mode",
            f"{mode} (platforms' emulators under /sandbox/<platform>/)"
            if mode == "sandbox"
            else mode,
        ),
        ("server", _server_line(server)),
        (
            "database",
            database["location"]
            + (": reachable" if database["reachable"] else f": {database['error']}"),
        ),
    ]
    if database["reachable"]:
        lines.append(("migrations", _migrations(database)))
    tenants = report["tenants"]
    if tenants is not None:
        lines.append(("tenants", str(tenants["count"])))
    width = max(len(label) for label, _ in lines) + 1
    text = [f"{label + ':':<{width}} {value}" for label, value in lines]
    if tenants is not None and tenants["items"]:
        rows = [(i["tenantId"], i["activeKeys"], i["name"]) for i in tenants["items"]]
        text.append(tables.render(("TENANT", "ACTIVE KEYS", "NAME"), rows, indent="  "))
        hidden = tenants["count"] - len(tenants["items"])
        if hidden > 0:
            text.append(f"  … and {hidden} more (gateway tenants list)")
    return "\n".join(text)


def _server_line(server: dict[str, Any]) -> str:
    where = f"{server['host']}:{server['port']}"
    if server["publicUrl"] != f"http://{where}":
        where += f" (public URL {server['publicUrl']})"
    return f"{where}: {server['detail']}"


def _migrations(database: dict[str, Any]) -> str:
    if database["revision"] is None:
        return f"none: an empty database (gateway migrate brings it to {database['head']})"
    if database["upToDate"]:
        return f"{database['revision']} (up to date)"
    return f"{database['revision']}; this version's head is {database['head']} (gateway migrate)"

"""`gateway validate` on a production config: real credentials, a person's consent, own tenant."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys

from gateway.ops.browser import browser, consent, open_link
from gateway.ops.local import free_port

from ...support import gateway_env, spawn_gateway, wait_for
from .test_validate import checks_of

PLATFORM = "examplesocial"


async def start_platform(aiohttp_server):
    """The "live" platform: the example sandbox on its own port, whose consent page asks."""
    from gateway_example_plugin.social_sandbox import CLIENT_ID, CLIENT_SECRET, ExampleSocialSandbox

    platform = ExampleSocialSandbox(auto_approve=False)
    server = await aiohttp_server(platform.build_app())
    settings = {
        "CORE_MODE": "production",
        # The "live" platform is an emulator: the one way production mode takes a sandbox_url.
        "TESTING_PRODUCTION_AGAINST_EMULATORS": "true",
        "SERVER_PORT": str(free_port()),
        "PLATFORMS_EXAMPLESOCIAL_CLIENT_ID": CLIENT_ID,
        "PLATFORMS_EXAMPLESOCIAL_CLIENT_SECRET": CLIENT_SECRET,
        "PLATFORMS_EXAMPLESOCIAL_SANDBOX_URL": str(server.make_url("")).rstrip("/"),
        "PLATFORMS_EXAMPLE_ENABLED": "false",
        "PLATFORMS_META_ENABLED": "false",
        "PLATFORMS_MAILCHIMP_ENABLED": "false",
    }
    return platform, settings


def production_env(tmp_path, installed_example, settings: dict[str, str]) -> dict[str, str]:
    """A `gateway` process's environment on the production config, its database in tmp_path."""
    return gateway_env(
        tmp_path / "var",
        installed_example,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/production.db",
        **settings,
    )


async def run_validate(
    tmp_path, env, *args, person=None, platform=PLATFORM
) -> tuple[int, str, str]:
    """``gateway validate`` in a pipe; ``person`` reads its stderr lines and may answer them."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "validate",
        "--platform",
        platform,
        *args,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    err_lines: list[str] = []

    async def read_stderr() -> None:
        async for raw in process.stderr:
            line = raw.decode()
            err_lines.append(line)
            if person is not None:
                await person(line)

    out, _, _ = await asyncio.wait_for(
        asyncio.gather(process.stdout.read(), read_stderr(), process.wait()), 120
    )
    return process.returncode, out.decode(), "".join(err_lines)


async def allow(url: str) -> str:
    """What a person does with the printed link: open it, press Allow, land on the callback.

    The platform's consent page, where the link led.
    """
    async with browser() as person:
        consent_page = await open_link(person, url)
        async with person.get(consent_page) as page:
            assert page.status == 200 and "Allow" in await page.text()
        callback = await consent_on(person, consent_page)
        async with person.get(callback) as landed:
            assert landed.status == 200, await landed.text()
    return consent_page


async def consent_on(person, consent_page: str) -> str:
    """Press Allow on the platform's consent page: the callback it sends the browser to."""
    async with person.post(consent_page, data={"decision": "allow"}, allow_redirects=False) as sent:
        return sent.headers["Location"]


def database(tmp_path):
    return sqlite3.connect(tmp_path / "production.db")


async def test_a_live_run_asks_once_for_consent_then_uses_the_connection(
    tmp_path, installed_example, aiohttp_server
):
    platform, settings = await start_platform(aiohttp_server)
    env = production_env(tmp_path, installed_example, settings)
    links: list[str] = []
    pages: list[str] = []

    async def person(line: str) -> None:
        if line.startswith("  http"):
            links.append(line.strip())
            pages.append(await allow(line.strip()))

    code, out, err = await run_validate(tmp_path, env, "--consent-timeout", "60", person=person)
    assert code == 0, out + err
    assert "against the live platforms" in err
    # The gateway's one-time link (on its public URL), which led to the live platform.
    assert len(links) == 1
    assert links[0].startswith(f"http://127.0.0.1:{settings['SERVER_PORT']}/oauth/{PLATFORM}/go/")
    assert pages[0].startswith(settings["PLATFORMS_EXAMPLESOCIAL_SANDBOX_URL"])
    checks = checks_of(json.loads((tmp_path / "logs/connector_test_results.json").read_text()))
    connect = checks[PLATFORM, "connect"]
    assert connect["status"] == "pass"
    assert connect["detail"].startswith("new OAuth connection ") and connect["detail"].endswith(
        "(live)"
    )
    for name in ("health_check", "accounts", "publish", "delete", "queue"):
        assert checks[PLATFORM, name]["status"] == "pass", checks[PLATFORM, name]
    # Faults are injected on the sandbox, never on the live platform, and the report says so.
    for name in ("retry", "error_classification"):
        assert checks[PLATFORM, name]["status"] == "pass", checks[PLATFORM, name]
        assert checks[PLATFORM, name]["detail"].endswith("(on the sandbox)")

    # The live platform saw posts made and deleted, and no injected fault.
    posted = [e for e in platform.journal.find(method="POST") if e.path.endswith("/posts")]
    assert posted and all(e.status < 400 and not e.faulted for e in platform.journal.entries)
    assert platform.journal.find(method="DELETE")

    # Everything it made is in the operator's database, in the validation tenant; its key is
    # revoked when the run ends.
    with database(tmp_path) as db:
        tenants = db.execute(
            "SELECT id FROM tenants WHERE name = 'connector-validation'"
        ).fetchall()
        assert len(tenants) == 1
        (tenant_id,) = tenants[0]
        keys = db.execute(
            "SELECT revoked_at FROM api_keys WHERE tenant_id = ?", (tenant_id,)
        ).fetchall()
        assert keys and all(revoked is not None for (revoked,) in keys)
        (connection_id,) = db.execute(
            "SELECT id FROM connections WHERE tenant_id = ?", (tenant_id,)
        ).fetchone()
        statuses = dict(
            db.execute(
                "SELECT status, count(*) FROM publish_jobs WHERE tenant_id = ? GROUP BY status",
                (tenant_id,),
            ).fetchall()
        )
    assert statuses.get("published", 0) >= 1 and "cancelled" in statuses
    assert connection_id in connect["detail"]

    # The next run, in a pipe with nobody to ask, uses that connection again.
    code, out, err = await run_validate(tmp_path, env, "--no-publish")
    assert code == 0, out + err
    checks = checks_of(json.loads((tmp_path / "logs/connector_test_results.json").read_text()))
    assert (
        checks[PLATFORM, "connect"]["detail"] == f"existing OAuth connection {connection_id} (live)"
    )
    assert checks[PLATFORM, "health_check"]["status"] == "pass"
    assert checks[PLATFORM, "publish"] == {**checks[PLATFORM, "publish"], "status": "skip"}
    # Posting to the sandbox harms no real account: --no-publish does not skip these.
    assert checks[PLATFORM, "retry"]["status"] == "pass"


async def test_a_live_run_with_nobody_to_ask_skips_and_says_how(
    tmp_path, installed_example, aiohttp_server
):
    _, settings = await start_platform(aiohttp_server)
    env = production_env(tmp_path, installed_example, settings)
    code, out, err = await run_validate(tmp_path, env)
    assert code == 0, out + err
    checks = checks_of(json.loads((tmp_path / "logs/connector_test_results.json").read_text()))
    assert checks[PLATFORM, "connect"]["status"] == "skip"
    assert "--consent-timeout 300" in checks[PLATFORM, "connect"]["detail"]
    assert checks[PLATFORM, "health_check"]["detail"].startswith("no connection id")


async def test_consent_that_never_comes_fails_the_connect_check(
    tmp_path, installed_example, aiohttp_server
):
    _, settings = await start_platform(aiohttp_server)
    env = production_env(tmp_path, installed_example, settings)
    code, _, err = await run_validate(tmp_path, env, "--consent-timeout", "1")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith(f"error: 1 check(s) failed: {PLATFORM}.connect")
    checks = checks_of(json.loads((tmp_path / "logs/connector_test_results.json").read_text()))
    assert "nobody allowed access within 1 s" in checks[PLATFORM, "connect"]["detail"]


async def test_an_api_key_platform_reads_its_key_from_the_environment(
    tmp_path, installed_example, aiohttp_server
):
    from gateway_example_plugin import ExampleSandbox

    _, settings = await start_platform(aiohttp_server)
    server = await aiohttp_server(ExampleSandbox().build_app())
    env = production_env(
        tmp_path,
        installed_example,
        {
            **settings,
            "PLATFORMS_EXAMPLE_ENABLED": "true",
            "PLATFORMS_EXAMPLE_REGION": "eu",
            "PLATFORMS_EXAMPLE_SANDBOX_URL": str(server.make_url("")).rstrip("/"),
        },
    )
    report = tmp_path / "logs/connector_test_results.json"
    code, out, err = await run_validate(tmp_path, env, platform="example")
    assert code == 0, out + err
    connect = checks_of(json.loads(report.read_text()))["example", "connect"]
    assert connect == {
        **connect,
        "status": "skip",
        "detail": "cannot connect: set VALIDATE_EXAMPLE_API_KEY to the account's API key",
    }

    env["VALIDATE_EXAMPLE_API_KEY"] = "ex-" + "0123456789abcdef" * 2
    code, out, err = await run_validate(tmp_path, env, platform="example")
    assert code == 0, out + err
    checks = checks_of(json.loads(report.read_text()))
    assert checks["example", "connect"]["status"] == "pass"
    assert checks["example", "connect"]["detail"].startswith("new API-key connection ")
    assert checks["example", "health_check"]["status"] == "pass"
    assert "VALIDATE_EXAMPLE_API_KEY" not in out + err and "0123456789abcdef" not in out + err


async def test_with_the_gateway_running_its_server_answers_the_consent(
    tmp_path, installed_example, aiohttp_server
):
    """`gateway serve` holds the configured port: the platform sends the browser back to it,
    it completes the connection in the shared database, and the run picks it up."""
    _, settings = await start_platform(aiohttp_server)
    env = production_env(tmp_path, installed_example, settings)
    port = settings["SERVER_PORT"]
    server = await spawn_gateway("serve", "--port", port, env=env, log_file=tmp_path / "serve.log")
    try:
        await wait_for(f"http://127.0.0.1:{port}/readyz", server)
        callbacks: list[str] = []

        async def person(line: str) -> None:
            if line.startswith("  http"):
                async with browser() as person:
                    callbacks.append(await consent(person, line.strip()))
                    async with person.get(callbacks[-1]) as landed:
                        assert landed.status == 200, await landed.text()

        code, out, err = await run_validate(
            tmp_path, env, "--no-publish", "--consent-timeout", "60", person=person
        )
    finally:
        server.terminate()
        await server.wait()
    assert code == 0, out + err
    assert callbacks and callbacks[0].startswith(f"http://127.0.0.1:{port}/")
    checks = checks_of(json.loads((tmp_path / "logs/connector_test_results.json").read_text()))
    assert checks[PLATFORM, "connect"]["detail"].startswith("new OAuth connection ")
    assert checks[PLATFORM, "health_check"]["status"] == "pass"

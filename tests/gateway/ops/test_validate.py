"""`gateway validate` against the example plugin's sandboxes: passes, and names a failing check."""

from __future__ import annotations

import json

import aiohttp

from ...support import gateway_env, run_gateway

REPORT = "logs/connector_test_results.json"


async def validate(tmp_path, installed_example, *args, **settings) -> tuple[int, str, str]:
    env = gateway_env(tmp_path / "var", installed_example, **settings)
    return await run_gateway("validate", *args, env=env, cwd=tmp_path)


def checks_of(report: dict) -> dict[tuple[str, str], dict]:
    return {(p["platform"], c["name"]): c for p in report["platforms"] for c in p["checks"]}


async def test_every_check_passes_against_the_sandboxes(tmp_path, installed_example):
    code, out, err = await validate(tmp_path, installed_example)
    assert code == 0, out + err
    report = json.loads((tmp_path / REPORT).read_text())
    assert set(report) == {"generatedAt", "platforms"}
    # The built-in plugins and the installed third-party one, validated alike.
    platforms = [p["platform"] for p in report["platforms"]]
    assert platforms == ["example", "examplesocial", "mailchimp", "meta"]
    checks = checks_of(report)
    for check in checks.values():
        assert set(check) == {"name", "status", "latencyMs", "detail"}
        assert check["status"] in ("pass", "skip"), check
    social = [name for (platform, name), c in checks.items() if platform == "examplesocial"]
    assert all(checks["examplesocial", name]["status"] == "pass" for name in social)
    assert set(social) >= {"connect", "health_check", "accounts", "publish", "delete", "queue"}
    assert "429→rate_limited" in checks["examplesocial", "error_classification"]["detail"]
    for platform in ("meta", "mailchimp"):
        for name in ("connect", "publish", "queue", "retry", "error_classification"):
            assert checks[platform, name]["status"] == "pass", checks[platform, name]
    assert checks["meta", "delete"]["status"] == "pass"
    # A sent email campaign cannot be deleted: the platform's rule, said plainly, not a failure.
    assert checks["mailchimp", "delete"]["status"] == "skip"
    # The API-key platform connects and is healthy; it does not publish, so that is skipped.
    assert checks["example", "connect"]["status"] == "pass"
    assert checks["example", "publish"] == {
        **checks["example", "publish"],
        "status": "skip",
        "detail": "the connector does not publish",
    }
    assert any(
        line.split()[:3] == ["examplesocial", "publish", "PASS"] for line in out.splitlines()
    )
    assert out.splitlines()[0].split() == ["PLATFORM", "CHECK", "STATUS", "MS", "DETAIL"]
    assert "\r" not in err  # no progress line in a pipe


async def test_a_sandbox_fault_fails_the_run_naming_the_check(
    tmp_path, installed_example, aiohttp_server
):
    from gateway_example_plugin.social_sandbox import ExampleSocialSandbox

    sandbox = await aiohttp_server(ExampleSocialSandbox(auto_approve=True).build_app())
    root = str(sandbox.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        fault = {"method": "DELETE", "path": "*/v1/posts/*", "status": 500, "count": 100}
        async with http.post(f"{root}/_control/faults", json=fault) as response:
            assert response.status in (200, 201)
    code, _, err = await validate(
        tmp_path,
        installed_example,
        "--platform",
        "examplesocial",
        "--output",
        "out/report.json",
        PLATFORMS_EXAMPLESOCIAL_SANDBOX_URL=root,
    )
    assert code == 1
    checks = checks_of(json.loads((tmp_path / "out/report.json").read_text()))
    # Deleting is broken, and so is unscheduling a post the platform holds (the same call).
    expected = "error: 2 check(s) failed: examplesocial.delete, examplesocial.queue"
    assert err.strip().splitlines()[-1] == expected, checks
    assert checks["examplesocial", "publish"]["status"] == "pass"
    assert checks["examplesocial", "delete"]["status"] == "fail"
    assert "HTTP 5" in checks["examplesocial", "delete"]["detail"]
    assert {p for p, _ in checks} == {"examplesocial"}


async def test_no_publish_skips_what_would_post(tmp_path, installed_example):
    code, out, err = await validate(tmp_path, installed_example, "--no-publish")
    assert code == 0, out + err
    checks = checks_of(json.loads((tmp_path / REPORT).read_text()))
    for name in ("publish", "queue", "retry", "error_classification"):
        assert checks["examplesocial", name]["status"] == "skip"
        assert checks["examplesocial", name]["detail"] == "--no-publish"
    assert checks["examplesocial", "health_check"]["status"] == "pass"


async def test_an_unknown_platform_is_a_usage_error(tmp_path, installed_example):
    code, _, err = await validate(tmp_path, installed_example, "--platform", "nosuch")
    assert code == 2
    assert err.strip().startswith("error: no enabled platform 'nosuch' (installed: ")

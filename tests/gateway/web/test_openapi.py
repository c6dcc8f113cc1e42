"""/openapi.json matches the server: schemathesis fuzzes the running app (no 5xx, no drift)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
from aiohttp import web

from gateway import admin, hookimpl
from gateway.host import Gateway
from gateway.web.app import create_app

from ...conftest import _drop_postgres_database, _postgres_database, settings_for


def _connector_only_plugin():
    from gateway_example_plugin import ExampleConnector

    return types.SimpleNamespace(
        register_connectors=hookimpl(lambda registry: registry.add(ExampleConnector))
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database(request, tmp_path_factory):
    """The fuzzed gateway's database: each database answers bad input its own way (a NUL byte
    was a 500 on PostgreSQL alone), so the whole document is fuzzed on both."""
    if request.param == "sqlite":
        yield None
        return
    url = asyncio.run(_postgres_database())
    try:
        yield url
    finally:
        asyncio.run(_drop_postgres_database(url))


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory, database):
    """The app served from a background thread's event loop, and a tenant API key for it."""
    tmp_path = tmp_path_factory.mktemp("openapi")
    gateway = Gateway.from_settings(
        # A fuzzer sends hundreds of bad keys from one address: what the failure limit stops
        # (tests/gateway/web/test_lockout.py). Here every answer is to be the route's own.
        settings_for(tmp_path, database, auth={"failure_limit": 0}),
        extra_plugins=[("example", _connector_only_plugin())],
        entry_points=False,
    )
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict = {}

    async def start() -> None:
        runner = web.AppRunner(create_app(gateway))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"] = runner
        state["port"] = runner.addresses[0][1]
        state["key"] = (await admin.create_tenant(gateway, "fuzz")).api_key

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{state['port']}", state["key"]
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def schemathesis_run(base: str, *args: str) -> subprocess.CompletedProcess[str]:
    # The schemathesis CLI, not its pytest plugin: that plugin lags behind pytest releases.
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{base}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--no-color",
            "--generation-database",
            ":memory:",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_document_is_openapi_31_with_security(live_gateway):
    import json
    import urllib.request

    base, _ = live_gateway
    with urllib.request.urlopen(f"{base}/openapi.json") as response:
        raw = json.load(response)
    assert raw["openapi"] == "3.1.0"
    assert raw["paths"]["/api/platforms"]["get"]["security"] == [{"apiKey": []}]
    assert raw["paths"]["/healthz"]["get"]["security"] == []


def test_refusals_found_by_longer_fuzzing_runs_are_documented(live_gateway):
    import json
    import urllib.request

    base, _ = live_gateway
    with urllib.request.urlopen(f"{base}/openapi.json") as response:
        paths = json.load(response)["paths"]
    # A body over server.max_body_bytes is 413 wherever a body is taken.
    assert "413" in paths["/api/publish"]["post"]["responses"]
    assert "413" in paths["/webhooks/{platform}"]["post"]["responses"]
    assert "413" not in paths["/api/jobs/{jobId}"]["get"]["responses"]
    # A platform whose webhooks come to a secret URL refuses its plain one, and unknown ones.
    for path in ("/webhooks/{platform}", "/webhooks/{platform}/{secret}"):
        assert "401" in paths[path]["get"]["responses"]
    # A request line or header past the server's limit is 431 on any route (bench/fuzz.py
    # found it undocumented on the OAuth callback, whose query is the whole request line).
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "431" in operation["responses"], (method, path)


def served_document(base: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{base}/openapi.json") as response:
        return json.load(response)


def test_shared_shapes_are_named_components(live_gateway):
    base, _ = live_gateway
    document = served_document(base)
    schemas = document["components"]["schemas"]
    for name in (
        *("Job", "JobList", "DeadJob", "DeadJobList", "Post", "PublishAccepted", "Problem"),
        *("Connection", "ConnectionList", "Account", "AccountList", "Analytics"),
        *("WebhookEndpoint", "WebhookEndpointList", "Platform", "PlatformList"),
    ):
        assert name in schemas, name

    def ok_schema(path: str, method: str, status: str = "200") -> dict:
        response = document["paths"][path][method]["responses"][status]
        return response["content"]["application/json"]["schema"]

    job = {"$ref": "#/components/schemas/Job"}
    assert ok_schema("/api/jobs/{jobId}", "get") == job
    assert ok_schema("/api/jobs/{jobId}", "delete") == job
    assert ok_schema("/api/dlq/{jobId}/replay", "post") == job
    assert ok_schema("/api/jobs", "get") == {"$ref": "#/components/schemas/JobList"}
    assert schemas["JobList"]["properties"]["data"]["items"] == job
    assert "notes" in schemas["Job"]["required"]
    problem = document["paths"]["/api/jobs/{jobId}"]["get"]["responses"]["404"]
    assert problem["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


def test_no_core_route_answers_an_anonymous_object(live_gateway):
    base, _ = live_gateway
    document = served_document(base)
    anonymous = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if any(tag.startswith("plugin:") for tag in operation["tags"]):
                continue  # a plugin's own schemas are its to name
            bodies = [operation.get("requestBody", {})]
            bodies += operation["responses"].values()
            for body in bodies:
                for content in body.get("content", {}).values():
                    if content["schema"].get("type") == "object":
                        anonymous.append(f"{method.upper()} {path}")
    assert anonymous == []


def test_two_shapes_under_one_name_are_refused():
    from gateway.web.spec import ApiSpec, Schema, json_response

    async def first(request):
        raise NotImplementedError

    async def second(request):
        raise NotImplementedError

    spec = ApiSpec("t", "1")
    spec.route("GET", "/a", summary="a", responses={200: json_response(Schema("Thing", {}))})(first)
    same = Schema("Thing", {})
    spec.route("GET", "/b", summary="b", responses={200: json_response(same)})(second)
    assert set(spec.document()["components"]["schemas"]) == {"Problem", "FieldProblem", "Thing"}
    spec.route(
        "GET",
        "/c",
        summary="c",
        responses={200: json_response(Schema("Thing", {"type": "string"}))},
    )(second)
    with pytest.raises(ValueError, match="Thing"):
        spec.document()


def test_server_matches_its_openapi_document(live_gateway):
    base, key = live_gateway
    auth = ("--header", f"Authorization: Bearer {key}")
    # A well-formed API key can still be refused by the platform (422), a well-formed OAuth
    # state can be unknown (400), a real platform name can be an API-key platform (422), and a
    # well-formed webhook URL can name an address the gateway never calls (422, netguard):
    # those four are checked for everything except "schema-valid input is accepted".
    judged_by_others = "^(create_connection|create_endpoint|oauth_callback|oauth_start)$"
    result = schemathesis_run(base, *auth, "--exclude-operation-id-regex", judged_by_others)
    assert result.returncode == 0, result.stdout[-9000:] + result.stderr[-2000:]
    result = schemathesis_run(
        base,
        *auth,
        "--include-operation-id-regex",
        judged_by_others,
        "--exclude-checks",
        "positive_data_acceptance",
    )
    assert result.returncode == 0, result.stdout[-9000:] + result.stderr[-2000:]


def test_server_matches_its_document_without_credentials(live_gateway):
    base, _ = live_gateway
    # Without a key every API route is 401; the OAuth callback (no key needed) answers an
    # unknown state with 400, which the positive-data check would call a rejection.
    result = schemathesis_run(base, "--exclude-operation-id", "oauth_callback")
    assert result.returncode == 0, result.stdout[-9000:] + result.stderr[-2000:]

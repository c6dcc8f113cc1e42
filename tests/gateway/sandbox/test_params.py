"""read_params and bearer_token: one reading of a request's parameters, whatever their encoding."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.sandbox import (
    HostRoutes,
    ParamError,
    RequestParams,
    Sandbox,
    bearer_token,
    read_params,
)

HOST = "api.echo.test"


class EchoSandbox(Sandbox):
    """Answers with what it read, behind the toolkit's middlewares (the journal reads bodies)."""

    platform = "echo"
    hosts = (HOST,)

    def setup_routes(self, routes: HostRoutes) -> None:
        for method in ("GET", "POST", "DELETE"):
            routes.add(HOST, method, "/echo", self.echo)
        routes.add(HOST, "GET", "/bearer-only", self.bearer_only)

    async def echo(self, request: web.Request) -> web.Response:
        try:
            params = await read_params(request)
            return web.json_response(
                {
                    "params": dict(params),
                    "metric": params.list_of("metric"),
                    "token": bearer_token(
                        request, schemes=("bearer", "oauth"), param="access_token", params=params
                    ),
                }
            )
        except ParamError as exc:
            return web.json_response({"name": exc.name, "message": exc.message}, status=400)

    async def bearer_only(self, request: web.Request) -> web.Response:
        return web.json_response({"token": bearer_token(request)})


@pytest.fixture
async def echo(aiohttp_server):
    server = await aiohttp_server(EchoSandbox().build_app())
    async with aiohttp.ClientSession(f"http://{server.host}:{server.port}") as http:

        async def call(method: str, path: str = "/echo", **kwargs: Any) -> tuple[int, Any]:
            async with http.request(method, f"/{HOST}{path}", **kwargs) as r:
                return r.status, await r.json()

        yield call


async def test_a_comma_list_in_the_query(echo) -> None:
    status, body = await echo("GET", params={"metric": "reach, likes,,saved"})
    assert status == 200
    assert body["metric"] == ["reach", "likes", "saved"]


async def test_a_json_array_in_the_query(echo) -> None:
    status, body = await echo("GET", params={"metric": '["reach","likes"]'})
    assert (status, body["metric"]) == (200, ["reach", "likes"])
    # Numbers and booleans in the array read as their form text.
    _, body = await echo("GET", params={"metric": '["a", 12, true]'})
    assert body["metric"] == ["a", "12", "true"]


async def test_a_form_body_over_the_query(echo) -> None:
    status, body = await echo(
        "POST",
        params={"message": "from the query", "access_token": "EAAquery"},
        data={"message": "from the body", "metric": '["reach","likes"]'},
    )
    assert status == 200
    assert body["params"]["message"] == "from the body"
    assert body["metric"] == ["reach", "likes"]
    assert body["token"] == "EAAquery"


async def test_a_json_body_reads_as_its_form_text(echo) -> None:
    status, body = await echo(
        "POST",
        json={
            "metric": ["reach", "likes"],
            "published": False,
            "scheduled_publish_time": 1_900_000_000,
            "attached_media": [{"media_fbid": "1"}],
            "link": None,
        },
    )
    assert status == 200
    params = body["params"]
    assert body["metric"] == ["reach", "likes"]
    assert params["published"] == "false"
    assert params["scheduled_publish_time"] == "1900000000"
    assert json.loads(params["attached_media"]) == [{"media_fbid": "1"}]
    assert "link" not in params  # null is no value


async def test_a_multipart_body_the_journal_has_already_read(echo) -> None:
    form = aiohttp.FormData()
    form.add_field("message", "Grüße")
    form.add_field("metric", "reach,likes")
    form.add_field("source", b"\xff\xd8\xff binary", filename="a.jpg", content_type="image/jpeg")
    status, body = await echo("POST", data=form)
    assert status == 200
    assert body["params"] == {"message": "Grüße", "metric": "reach,likes"}  # a file is no param
    assert body["metric"] == ["reach", "likes"]


async def test_bracketed_names_make_arrays_and_objects(echo) -> None:
    query = [
        ("metric[1]", "likes"),
        ("metric[0]", "reach"),
        ("attached_media[0][media_fbid]", "11"),
        ("attached_media[1][media_fbid]", "12"),
        ("tags[]", "a"),
        ("tags[]", "b"),
        ("targeting[geo_locations][countries][0]", "FR"),
    ]
    status, body = await echo("GET", params=query)
    assert status == 200
    params = body["params"]
    assert body["metric"] == ["reach", "likes"]
    assert json.loads(params["attached_media"]) == [{"media_fbid": "11"}, {"media_fbid": "12"}]
    assert json.loads(params["tags"]) == ["a", "b"]
    assert json.loads(params["targeting"]) == {"geo_locations": {"countries": ["FR"]}}
    # Indexes with gaps (or spelled twice) make an object, never a short or a broken array.
    _, body = await echo(
        "GET", params=[("a[0]", "x"), ("a[2]", "y"), ("b[01]", "p"), ("b[0]", "q")]
    )
    assert json.loads(body["params"]["a"]) == {"0": "x", "2": "y"}
    assert json.loads(body["params"]["b"]) == {"01": "p", "0": "q"}
    # The same names in a form body.
    _, body = await echo("POST", data=[("metric[0]", "views"), ("metric[1]", "reach")])
    assert body["metric"] == ["views", "reach"]


async def test_bodies_that_cannot_be_read_are_param_errors(echo) -> None:
    headers = {"Content-Type": "application/json"}
    status, body = await echo("POST", data=b"{not json", headers=headers)
    assert (status, body["name"]) == (400, None)
    assert "not valid JSON" in body["message"]
    status, body = await echo("POST", data=b'["a"]', headers=headers)
    assert (status, body["message"]) == (400, "The request body must be a JSON object")
    status, body = await echo("GET", params={"metric": '["reach"'})
    assert (status, body["name"]) == (400, "metric")
    status, body = await echo("GET", params={"metric": '[["nested"]]'})
    assert (status, body["message"]) == (400, "Param metric must be an array of strings")


async def test_the_token_in_the_query_the_body_or_the_header(echo) -> None:
    _, body = await echo("GET", params={"access_token": "EAAquery"})
    assert body["token"] == "EAAquery"
    _, body = await echo("POST", data={"access_token": "EAAform"})
    assert body["token"] == "EAAform"
    _, body = await echo("POST", json={"access_token": "EAAjson"})
    assert body["token"] == "EAAjson"
    _, body = await echo("GET", headers={"Authorization": "Bearer EAAbearer"})
    assert body["token"] == "EAAbearer"
    _, body = await echo("GET", headers={"Authorization": "OAuth EAAoauth"})
    assert body["token"] == "EAAoauth"
    # The header wins over a parameter; a scheme the platform does not take is no token.
    _, body = await echo(
        "GET", params={"access_token": "EAAquery"}, headers={"Authorization": "Bearer EAAh"}
    )
    assert body["token"] == "EAAh"
    _, body = await echo("GET", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert body["token"] is None
    _, body = await echo("GET", "/bearer-only", headers={"Authorization": "OAuth EAAoauth"})
    assert body["token"] is None
    _, body = await echo("GET", "/bearer-only", params={"access_token": "EAAquery"})
    assert body["token"] is None


def test_flags_are_true_false_one_or_zero() -> None:
    params = RequestParams({"a": "true", "b": "0", "c": "FALSE", "d": "maybe"})
    assert params.flag("a", False) is True
    assert params.flag("b", True) is False
    assert params.flag("c", True) is False
    assert params.flag("missing", True) is True
    with pytest.raises(ParamError) as caught:
        params.flag("d", False)
    assert caught.value.name == "d"


def test_json_of_decodes_or_names_the_parameter() -> None:
    params = RequestParams({"media": '[{"media_fbid":"1"}]', "bad": "{"})
    assert params.json_of("media") == [{"media_fbid": "1"}]
    assert params.json_of("missing") is None
    with pytest.raises(ParamError, match="Param bad must be JSON"):
        params.json_of("bad")

"""The JSON body reader: lone surrogates are 422 naming the field, deep nesting 400, never 500."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from gateway.errors import BadRequest, InvalidInput
from gateway.web.jsonread import MAX_JSON_DEPTH, parse_json

from ...conftest import auth
from ..jobs.test_pipeline import account_of, jobs_count

PROBLEM = "application/problem+json"


def test_plain_bodies_pass_untouched():
    assert parse_json(b'{"a": [1, {"b": "caf\\u00e9 \xc3\xa9"}]}') == {"a": [1, {"b": "café é"}]}
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(nested.encode()) is not None


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"body": "a\\ud800b"}', "body"),
        (b'{"options": {"x": ["ok", "\\udfff"]}}', "options.x.1"),
        (b'{"options": {"\\udc00": 1}}', "options.\\udc00"),
    ],
)
def test_lone_surrogates_are_refused_naming_the_field(raw, field):
    with pytest.raises(InvalidInput) as refused:
        parse_json(raw)
    assert refused.value.status == 422
    assert [p.field for p in refused.value.errors] == [field]


def test_a_valid_pair_of_surrogates_is_text():
    assert parse_json(b'{"e": "\\ud83d\\ude00"}') == {"e": "\N{GRINNING FACE}"}


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deep_nesting_is_a_400(depth):
    with pytest.raises(BadRequest) as refused:
        parse_json(("[" * depth + "]" * depth).encode())
    assert refused.value.errors[0].code == "too_deep"


def test_invalid_utf8_is_a_400():
    with pytest.raises(BadRequest):
        parse_json(b'{"a": "\xed\xa0\x80"}')  # an encoded surrogate is not UTF-8


async def post(live, path, raw: bytes):
    headers = {**auth(live.key), "Content-Type": "application/json"}
    async with live.http.post(live.base + path, data=raw, headers=headers) as response:
        return response.status, response.content_type, await response.json(content_type=None)


async def test_every_body_route_refuses_through_the_reader(live):
    connection_id, account_id = await account_of(live)
    ids = {"connectionId": connection_id, "accountId": account_id}
    deep = "[" * 5000 + "]" * 5000
    with capture_logs() as logs:
        surrogate = json.dumps({**ids, "body": "x"})[:-1] + ', "title": "\\ud800"}'
        status, kind, problem = await post(live, "/api/publish", surrogate.encode())
        assert (status, kind) == (422, PROBLEM) and problem["errors"][0]["field"] == "title"
        in_options = json.dumps({**ids, "body": "x"})[:-1] + ', "options": {"\\udc00": "\\ud800"}}'
        status, _, problem = await post(live, "/api/publish", in_options.encode())
        assert status == 422 and problem["errors"][0]["field"].startswith("options.")
        for path, body in (
            ("/api/publish", json.dumps({**ids, "body": "x"})[:-1] + f', "options": {deep}}}'),
            ("/api/webhook-endpoints", deep),
            ("/api/connections", deep),
            ("/api/oauth/examplesocial/start", deep),
        ):
            status, kind, problem = await post(live, path, body.encode())
            assert (status, kind) == (400, PROBLEM), (path, problem)
    assert [entry for entry in logs if entry.get("exc_info")] == []
    assert await jobs_count(live) == 0

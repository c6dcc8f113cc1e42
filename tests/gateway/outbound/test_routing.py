"""Sandbox routing: real platform URLs are reached under ``<sandbox_url>/<host>/<path>``."""

from __future__ import annotations

import pytest

from gateway.outbound import route_url

SANDBOX = "http://127.0.0.1:8080/sandbox/meta"


def test_no_sandbox_leaves_the_url_alone():
    url = "https://graph.facebook.com/v25.0/me?fields=id"
    assert route_url(url, None) == url
    assert route_url(url, "") == url


def test_host_and_path_go_under_the_sandbox_with_the_query():
    assert (
        route_url("https://graph.facebook.com/v25.0/me?fields=id,name&limit=5", SANDBOX + "/")
        == SANDBOX + "/graph.facebook.com/v25.0/me?fields=id,name&limit=5"
    )


def test_port_kept_user_info_and_fragment_dropped():
    assert (
        route_url("https://user:pw@api.example.com:8443/x/y#frag", SANDBOX)
        == SANDBOX + "/api.example.com:8443/x/y"
    )


def test_url_already_under_the_sandbox_is_unchanged():
    url = SANDBOX + "/graph.facebook.com/v25.0/me/accounts?after=abc"
    assert route_url(url, SANDBOX) == url


def test_relative_url_is_refused():
    with pytest.raises(ValueError, match="absolute"):
        route_url("/v25.0/me", SANDBOX)


async def test_upstream_sees_host_and_path_with_the_query_intact(upstream, make_client):
    recorder, server = upstream
    client = await make_client(sandbox_url=str(server.make_url("/sandbox/meta")))
    async with client.get(
        "https://graph.facebook.com/v25.0/me?fields=id,name", params={"limit": "5"}
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {"ok": True}
    (seen,) = recorder.requests
    assert seen.path == "/sandbox/meta/graph.facebook.com/v25.0/me"
    assert seen.query == {"fields": "id,name", "limit": "5"}


async def test_without_sandbox_the_url_is_used_as_given(upstream, make_client):
    recorder, server = upstream
    client = await make_client()
    async with client.get(str(server.make_url("/v1/thing?x=1"))) as resp:
        assert resp.status == 200
    assert recorder.requests[0].path == "/v1/thing"
    assert recorder.requests[0].query == {"x": "1"}

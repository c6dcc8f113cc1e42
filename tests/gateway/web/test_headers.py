"""Every response: no framing, no sniffing, no referrer, and a Server header without a version."""

from __future__ import annotations

from ...conftest import auth


async def test_every_kind_of_response_carries_the_headers(api, tenant):
    client, _ = api
    answers = [
        await client.get("/healthz"),
        await client.get("/api/platforms", headers=auth(tenant)),
        await client.get("/api/platforms"),  # a 401 problem
        await client.get("/no/such/page"),  # a 404 problem
        await client.get("/sandbox/meta/no/such/path"),  # a mounted sandbox's own answer
    ]
    for response in answers:
        assert response.headers["Server"] == "gateway", response.url
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Referrer-Policy" in response.headers


async def test_a_route_keeps_its_own_referrer_policy(api):
    client, _ = api
    response = await client.get("/dashboard")
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"

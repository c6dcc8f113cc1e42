"""The journal: what each platform request carried and what it was answered, credentials hidden."""

from __future__ import annotations

import json

from gateway.sandbox import credential_fingerprint

from .flows import ME, POSTS, TOKEN, Served, bearer, login, refresh


async def journal(served: Served, **query: str) -> list[dict]:
    response = await served.request("GET", "/_control/journal", params=query)
    assert response.status == 200
    return (await response.json())["requests"]


async def test_a_json_request_is_recorded_with_its_answer(served: Served) -> None:
    token = (await login(served))["access_token"]
    await served.control("DELETE", "faults")  # control calls stay out of the journal
    response = await served.request(
        "POST",
        POSTS,
        params={"fields": ["id", "url"], "v": "2"},
        json={"text": "hello", "tags": ["a"]},
        headers={
            **bearer(token),
            "Idempotency-Key": "idem-1",
            "User-Agent": "gateway-test/1",
            "X-Not-Selected": "nope",
        },
    )
    assert response.status == 201
    entries = await journal(served)
    assert [e["path"] for e in entries] == [
        "/www.example.test/oauth/authorize",
        TOKEN,
        POSTS,
    ]
    entry = entries[-1]
    assert entry["method"] == "POST"
    assert entry["query"] == {"fields": ["id", "url"], "v": "2"}
    assert entry["body"] == {"text": "hello", "tags": ["a"]}
    assert entry["bodySize"] == len(json.dumps({"text": "hello", "tags": ["a"]}))
    assert entry["status"] == 201
    assert entry["faulted"] is False
    assert entry["time"].endswith("Z")
    assert entry["headers"] == {
        "content-type": "application/json",
        "user-agent": "gateway-test/1",
        "idempotency-key": "idem-1",
        "authorization": f"Bearer {credential_fingerprint(token)}",
    }


async def test_credentials_are_fingerprinted_never_stored(served: Served) -> None:
    first = await login(served)
    second = await login(served)
    await served.request("GET", ME, headers=bearer(first["access_token"]))
    await served.request("GET", ME, headers=bearer(second["access_token"]))
    await refresh(served, first["refresh_token"])
    entries = await journal(served)
    dumped = json.dumps(entries)
    for secret in (first["access_token"], second["access_token"], first["refresh_token"]):
        assert secret not in dumped
    assert "secret-1" not in dumped  # the client secret of the token requests
    calls = [e["headers"]["authorization"] for e in entries if e["path"] == ME]
    # Two different tokens stay distinguishable, and match what the test knows it sent.
    assert calls == [
        f"Bearer {credential_fingerprint(first['access_token'])}",
        f"Bearer {credential_fingerprint(second['access_token'])}",
    ]
    refreshed = entries[-1]
    assert refreshed["body"]["grant_type"] == "refresh_token"
    assert refreshed["body"]["refresh_token"] == credential_fingerprint(first["refresh_token"])


async def test_form_and_text_bodies(served: Served) -> None:
    await served.request("POST", TOKEN, data={"grant_type": "client_credentials", "x": "1"})
    big = "x" * 20_000
    await served.request("POST", POSTS, data=big, headers={"Content-Type": "text/plain"})
    form, text = await journal(served)
    assert form["body"] == {"grant_type": "client_credentials", "x": "1"}
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert form["status"] == 401
    assert text["body"] == "x" * 10 * 1024
    assert text["bodySize"] == 20_000


async def test_journal_can_be_filtered_by_method_and_path_glob(served: Served) -> None:
    await login(served)
    await served.request("GET", ME)
    assert [e["path"] for e in await journal(served, path="/api.example.test/*")] == [TOKEN, ME]
    assert [e["path"] for e in await journal(served, method="get")] == [ME]

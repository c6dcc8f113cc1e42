"""TokenStore: expiry on the sandbox clock, refresh with and without rotation, revoke, exchange."""

from __future__ import annotations

import math

import pytest

from gateway.sandbox import InvalidGrant, SandboxClock, TokenStatus, TokenStore, s256_challenge

from .flows import TOKEN, Served, login, me, refresh


async def error_code(served: Served, token: str) -> str:
    response = await me(served, token)
    assert response.status == 401
    return (await response.json())["error"]["code"]


async def test_refresh_with_rotation_replaces_the_refresh_token(served: Served) -> None:
    first = await login(served)
    response = await refresh(served, first["refresh_token"])
    assert response.status == 200
    second = await response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 3600
    assert second["refresh_token_expires_in"] == 30 * 86400
    # The old refresh token is spent; the old access token lives until it expires.
    stale = await refresh(served, first["refresh_token"])
    assert (await stale.json())["reason"] == "revoked"
    assert (await me(served, first["access_token"])).status == 200
    assert (await refresh(served, second["refresh_token"])).status == 200


async def test_refresh_without_rotation_keeps_the_token_and_its_expiry(served: Served) -> None:
    served.sandbox.rotate_refresh = False
    first = await login(served)
    await served.control("POST", "clock", {"advanceSeconds": 86400})
    second = await (await refresh(served, first["refresh_token"])).json()
    assert second["refresh_token"] == first["refresh_token"]
    assert second["refresh_token_expires_in"] == 29 * 86400
    third = await (await refresh(served, first["refresh_token"])).json()
    assert third["access_token"] not in (first["access_token"], second["access_token"])
    await served.control("POST", "clock", {"advanceSeconds": 29 * 86400})
    expired = await refresh(served, first["refresh_token"])
    assert (await expired.json())["reason"] == "expired"


async def test_revoking_an_access_token_or_a_whole_grant(served: Served) -> None:
    one = await login(served)
    two = await login(served)
    await served.request(
        "POST", "/api.example.test/oauth/revoke", data={"token": one["access_token"]}
    )
    assert await error_code(served, one["access_token"]) == "token_revoked"
    assert (await refresh(served, one["refresh_token"])).status == 200  # the grant lives on

    refreshed = await (await refresh(served, two["refresh_token"])).json()
    await served.request(
        "POST", "/api.example.test/oauth/revoke", data={"token": refreshed["refresh_token"]}
    )
    # Revoking the refresh token ends its grant: every access token that descends from it.
    assert await error_code(served, two["access_token"]) == "token_revoked"
    assert await error_code(served, refreshed["access_token"]) == "token_revoked"
    assert (await (await refresh(served, refreshed["refresh_token"])).json())["reason"] == "revoked"
    _, state = await served.control("GET", "state")
    statuses = {t["accessToken"]: t["status"] for t in state["tokens"]}
    assert statuses[two["access_token"]] == "revoked"


async def test_missing_and_unknown_tokens_are_told_apart(served: Served) -> None:
    response = await served.request("GET", "/api.example.test/v1/me")
    assert (await response.json())["error"]["code"] == "token_missing"
    assert await error_code(served, "not-a-token") == "token_unknown"


async def test_unsupported_grant_and_bad_client(served: Served) -> None:
    response = await served.request(
        "POST", TOKEN, data={"client_id": "client-1", "client_secret": "wrong"}
    )
    assert response.status == 401


def test_expiry_is_measured_on_the_sandbox_clock() -> None:
    clock = SandboxClock()
    store = TokenStore(clock)
    token = store.issue("u1", ["a"], access_ttl=60, refresh_ttl=None)
    assert token.refresh_token is None and token.expires_in == 60
    assert store.check(token.access_token) == (TokenStatus.ACTIVE, token)
    clock.advance(60)
    assert store.check(token.access_token).status is TokenStatus.EXPIRED
    assert store.validate(token.access_token) is None
    assert store.check("nope") == (TokenStatus.UNKNOWN, None)


def test_tokens_without_expiry() -> None:
    clock = SandboxClock()
    store = TokenStore(clock, access_prefix="act.", refresh_prefix="rft.")
    token = store.issue("u1", ["a"], access_ttl=None, refresh_ttl=math.inf)
    clock.advance(10 * 365 * 86400)
    assert store.validate(token.access_token) is token
    assert store.refresh(token.refresh_token or "", rotate=False).access_token.startswith("act.")
    assert token.refresh_token is not None and token.refresh_token.startswith("rft.")
    assert token.expires_in is None
    [listed, _] = store.listing()
    assert listed["expiresAt"] is None and listed["refreshExpiresAt"] is None


def test_tokens_are_random_and_distinct() -> None:
    store = TokenStore(SandboxClock())
    issued = [store.issue("u", [], access_ttl=1, refresh_ttl=1) for _ in range(50)]
    values = {t.access_token for t in issued} | {t.refresh_token for t in issued}
    assert len(values) == 100
    assert all(len(t.access_token) >= 40 for t in issued)


def test_exchange_gives_a_longer_token_for_an_active_one() -> None:
    clock = SandboxClock()
    store = TokenStore(clock)
    short = store.issue("u1", ["pages"], access_ttl=3600, extra={"app": "1"})
    long = store.exchange(short.access_token, access_ttl=5_184_000, extra={"kind": "long"})
    assert long.expires_in == 5_184_000 and long.subject == "u1" and long.scopes == ("pages",)
    assert long.extra == {"app": "1", "kind": "long"}
    assert long.grant != short.grant
    assert store.validate(short.access_token) is short
    clock.advance(3600)
    with pytest.raises(InvalidGrant) as expired:
        store.exchange(short.access_token, access_ttl=5_184_000)
    assert expired.value.reason == TokenStatus.EXPIRED
    with pytest.raises(InvalidGrant) as unknown:
        store.exchange("nope", access_ttl=1)
    assert unknown.value.reason == "unknown"


def test_revoke_subject_ends_all_its_grants() -> None:
    store = TokenStore(SandboxClock())
    a = store.issue("u1", [], access_ttl=60, refresh_ttl=600)
    b = store.issue("u1", [], access_ttl=60)
    c = store.issue("u2", [], access_ttl=60)
    assert store.revoke_subject("u1") == 2
    assert store.check(a.access_token).status is TokenStatus.REVOKED
    assert store.check(b.access_token).status is TokenStatus.REVOKED
    assert store.validate(c.access_token) is c
    with pytest.raises(InvalidGrant):
        store.refresh(a.refresh_token or "", rotate=True)
    assert store.revoke("nope") is False


def test_hex_s256_challenges_for_platforms_that_use_them() -> None:
    verifier = "a" * 43
    store = TokenStore(SandboxClock(), pkce_encoding="hex")
    challenge = s256_challenge(verifier, encoding="hex")
    assert len(challenge) == 64
    code = store.issue_code("c", None, ["s"], challenge, "S256", "u1")
    assert store.redeem_code(code, "c", None, verifier).subject == "u1"
    base64_code = store.issue_code("c", None, ["s"], s256_challenge(verifier), "S256", "u1")
    with pytest.raises(InvalidGrant) as mismatch:
        store.redeem_code(base64_code, "c", None, verifier)
    assert mismatch.value.reason == "pkce_mismatch"


def test_code_checks_client_and_verifier_format() -> None:
    store = TokenStore(SandboxClock())
    code = store.issue_code("c", "https://r.test", ["s"], None, None, "u1")
    with pytest.raises(InvalidGrant) as other_client:
        store.redeem_code(code, "other", "https://r.test", None)
    assert other_client.value.reason == "client_mismatch"
    short = store.issue_code("c", "https://r.test", ["s"], "short", "plain", "u1")
    with pytest.raises(InvalidGrant) as bad_verifier:
        store.redeem_code(short, "c", "https://r.test", "short")  # under 43 characters
    assert bad_verifier.value.reason == "pkce_mismatch"
    with pytest.raises(ValueError, match="code_challenge_method"):
        store.issue_code("c", None, [], "x" * 43, "MD5", "u1")


def test_a_verifier_for_a_code_issued_without_pkce_is_a_downgrade() -> None:
    # RFC 9700 §2.1.1: a code from a flow that skipped PKCE must not redeem in one that used it.
    store = TokenStore(SandboxClock())
    code = store.issue_code("c", "https://r.test", ["s"], None, None, "u1")
    with pytest.raises(InvalidGrant) as downgrade:
        store.redeem_code(code, "c", "https://r.test", "v" * 43)
    assert downgrade.value.reason == "pkce_unexpected"
    plain = store.issue_code("c", "https://r.test", ["s"], None, None, "u1")
    assert store.redeem_code(plain, "c", "https://r.test", None).subject == "u1"

"""Guarded sessions on real sockets: names resolved once and checked, redirects re-checked."""

from __future__ import annotations

import pytest
from aiohttp import web

from gateway.netguard import Guard, Policy, StaticResolver, TargetRefused


class Counting(StaticResolver):
    def __init__(self, table):
        super().__init__(table)
        self.asked: list[str] = []

    async def resolve(self, host, port=0, family=0):
        self.asked.append(host)
        return await super().resolve(host, port, family)


@pytest.fixture
async def site(aiohttp_server):
    """A loopback server: ``/ok``, ``/internal``, and ``/go?to=URL&status=N`` redirects."""
    hits: list[tuple[str, str, dict]] = []

    async def record(request: web.Request) -> web.Response:
        hits.append((request.method, request.path, dict(request.headers)))
        if request.path == "/go":
            status = int(request.query.get("status", "302"))
            return web.Response(status=status, headers={"Location": request.query["to"]})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    return server.port, hits


def guard(policy: Policy, table: dict[str, list[str]]) -> tuple[Guard, Counting]:
    resolver = Counting(table)
    return Guard(policy, lambda: resolver), resolver


async def fetch(session, url, method="GET", **kwargs):
    async with session.request(method, url, **kwargs) as response:
        return response.status


async def test_a_name_resolving_to_loopback_is_refused_and_never_connected(site):
    port, hits = site
    chosen, resolver = guard(Policy(), {"hooks.example": ["127.0.0.1"]})
    async with chosen.session() as session:
        with pytest.raises(TargetRefused) as refused:
            await fetch(session, f"http://hooks.example:{port}/ok")
    assert refused.value.kind == "loopback" and "127.0.0.1" in refused.value.detail
    assert hits == [] and resolver.asked == ["hooks.example"]


async def test_a_name_resolving_to_the_metadata_address_is_refused_even_with_private_allowed():
    chosen, _ = guard(Policy(allow_private=True), {"meta.example": ["169.254.169.254"]})
    async with chosen.session() as session:
        with pytest.raises(TargetRefused) as refused:
            await fetch(session, "http://meta.example/latest/meta-data/")
    assert refused.value.kind == "metadata"


async def test_one_refused_address_among_others_refuses_the_name(site):
    port, hits = site
    chosen, _ = guard(
        Policy.build(False, ["mixed.example"]), {"mixed.example": ["127.0.0.1", "169.254.169.254"]}
    )
    async with chosen.session() as session:
        with pytest.raises(TargetRefused):
            await fetch(session, f"http://mixed.example:{port}/ok")
    assert hits == []


async def test_an_allowed_name_is_resolved_once_and_connected_to_the_address_checked(site):
    port, hits = site
    # The system resolver knows no "hooks.example": reaching the server proves the connection
    # went to the address this resolver answered and the guard checked.
    chosen, resolver = guard(
        Policy.build(False, ["hooks.example"]), {"hooks.example": ["127.0.0.1"]}
    )
    async with chosen.session() as session:
        assert await fetch(session, f"http://hooks.example:{port}/ok") == 200
    assert [path for _, path, _ in hits] == ["/ok"] and resolver.asked == ["hooks.example"]


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "0x7f000001", "127.1"])
async def test_address_literals_are_refused_by_the_session_and_by_its_connector(site, host):
    port, hits = site
    chosen, resolver = guard(Policy(), {})
    async with chosen.session() as session:
        with pytest.raises(TargetRefused):
            await fetch(session, f"http://{host}:{port}/ok")
        # Below the URL check, the connector itself (aiohttp skips the resolver for literals).
        with pytest.raises((TargetRefused, ValueError)):
            async with session._session.get(f"http://{host}:{port}/ok"):
                pass
    assert hits == [] and resolver.asked == []


async def test_a_redirect_into_an_internal_host_is_not_followed(site):
    port, hits = site
    chosen, _ = guard(
        Policy.build(False, ["public.example"]),
        {"public.example": ["127.0.0.1"], "internal.example": ["127.0.0.1"]},
    )
    internal = f"http://internal.example:{port}/internal"
    async with chosen.session(max_redirects=3) as session:
        with pytest.raises(TargetRefused):
            await fetch(session, f"http://public.example:{port}/go?to={internal}")
        with pytest.raises(TargetRefused):
            await fetch(
                session, f"http://public.example:{port}/go?to=http://127.0.0.1:{port}/internal"
            )
    assert [path for _, path, _ in hits] == ["/go", "/go"]


async def test_redirects_are_followed_up_to_the_limit_and_re_checked(site):
    port, _ = site
    chosen, _ = guard(Policy(allow_private=True), {})
    base = f"http://127.0.0.1:{port}"
    hop = f"{base}/ok"
    for _ in range(3):
        hop = f"{base}/go?to={hop.replace('&', '%26').replace('?', '%3F').replace('=', '%3D')}"
    async with chosen.session(max_redirects=3) as session:
        assert await fetch(session, hop) == 200
    async with chosen.session(max_redirects=2) as session:
        with pytest.raises(TargetRefused) as refused:
            await fetch(session, hop)
    assert refused.value.kind == "redirect"
    async with chosen.session(max_redirects=3) as session:
        with pytest.raises(TargetRefused) as refused:
            await fetch(session, f"{base}/go?to=file:///etc/passwd")
    assert refused.value.kind == "scheme"


async def test_without_redirects_a_3xx_is_handed_back_and_a_body_is_never_re_sent(site):
    port, hits = site
    chosen, _ = guard(Policy(allow_private=True), {})
    target = f"http://127.0.0.1:{port}/go?to=/internal&status=307"
    async with chosen.session() as session:
        assert await fetch(session, target, "POST", data=b"signed") == 307
    async with chosen.session(max_redirects=3) as session:
        assert await fetch(session, target, "POST", data=b"signed") == 307
    assert [path for _, path, _ in hits] == ["/go", "/go"]


async def test_credentials_are_not_carried_to_another_origin(site):
    port, hits = site
    chosen, _ = guard(Policy(allow_private=True), {"localhost": ["127.0.0.1"]})
    other = f"http://localhost:{port}/ok"
    async with chosen.session(max_redirects=1) as session:
        status = await fetch(
            session, f"http://127.0.0.1:{port}/go?to={other}", headers={"Authorization": "Bearer x"}
        )
    assert status == 200
    assert "Authorization" in hits[0][2] and "Authorization" not in hits[1][2]


class Rebinding(StaticResolver):
    """Answers the first address, then the next on every later lookup (DNS rebinding)."""

    def __init__(self, name: str, answers: list[str]) -> None:
        super().__init__({})
        self.name, self.answers = name, list(answers)

    async def resolve(self, host, port=0, family=0):
        self.table[self.name] = [self.answers.pop(0)]
        return await super().resolve(host, port, family)


async def test_each_connection_is_checked_on_the_answer_it_connects_to(site):
    port, hits = site
    resolver = Rebinding("hooks.example", ["127.0.0.1", "169.254.169.254"])
    chosen = Guard(Policy(allow_private=True), lambda: resolver)
    async with chosen.session() as session:
        assert await fetch(session, f"http://hooks.example:{port}/ok") == 200
    # A new connection asks again; the new answer is checked before anything connects.
    async with chosen.session() as session:
        with pytest.raises(TargetRefused) as refused:
            await fetch(session, f"http://hooks.example:{port}/ok")
    assert refused.value.kind == "metadata" and len(hits) == 1

"""Bearer tokens: sent where they belong, refreshed at most once after a 401."""

from __future__ import annotations

from aiohttp import web

from gateway.outbound import TokenSource


class Tokens:
    """A TokenSource that hands out ``current`` and refreshes to the next of ``fresh``."""

    def __init__(self, current: str, *fresh: str | None) -> None:
        self.current = current
        self.fresh = list(fresh)
        self.rejected: list[str] = []

    async def access_token(self) -> str:
        return self.current

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        self.rejected.append(rejected)
        new = self.fresh.pop(0)
        if new is not None:
            self.current = new
        return new


def test_the_fake_is_a_token_source():
    assert isinstance(Tokens("a"), TokenSource)


def _auth(recorder) -> list[str | None]:
    return [seen.headers.get("Authorization") for seen in recorder.requests]


async def test_no_token_sends_no_authorization(upstream, make_client):
    recorder, server = upstream
    client = await make_client()
    async with client.get(str(server.make_url("/x"))):
        pass
    assert _auth(recorder) == [None]


async def test_str_token_is_sent_and_never_refreshed(upstream, make_client):
    recorder, server = upstream
    recorder.then(401)
    client = await make_client()
    async with client.get(str(server.make_url("/x")), token="plain-token") as resp:
        assert resp.status == 401
    assert _auth(recorder) == ["Bearer plain-token"]


async def test_401_refreshes_once_and_replays(upstream, make_client):
    recorder, server = upstream
    recorder.then(401)
    tokens = Tokens("old", "new")
    client = await make_client()
    async with client.post(str(server.make_url("/x")), json={"m": 1}, token=tokens) as resp:
        assert resp.status == 200
    assert tokens.rejected == ["old"]
    assert _auth(recorder) == ["Bearer old", "Bearer new"]
    assert recorder.requests[1].body == b'{"m": 1}'


async def test_second_401_is_returned_without_another_refresh(upstream, make_client):
    recorder, server = upstream
    recorder.default = lambda _: web.json_response({}, status=401)
    tokens = Tokens("old", "new", "newer")
    client = await make_client()
    async with client.get(str(server.make_url("/x")), token=tokens) as resp:
        assert resp.status == 401
    assert tokens.rejected == ["old"]
    assert _auth(recorder) == ["Bearer old", "Bearer new"]


async def test_one_refresh_per_request_even_across_retries(upstream, make_client, vtime):
    recorder, server = upstream
    recorder.then(401).then(503)
    recorder.default = lambda _: web.json_response({}, status=401)
    tokens = Tokens("old", "new", "newer")
    client = await make_client()
    async with client.get(str(server.make_url("/x")), token=tokens) as resp:
        assert resp.status == 401
    # 401 → refresh → 503 → retry with the new token → 401: returned, no second refresh.
    assert tokens.rejected == ["old"]
    assert _auth(recorder) == ["Bearer old", "Bearer new", "Bearer new"]


async def test_no_replay_when_the_source_gives_up(upstream, make_client):
    recorder, server = upstream
    recorder.then(401)
    tokens = Tokens("old", None)
    client = await make_client()
    async with client.get(str(server.make_url("/x")), token=tokens) as resp:
        assert resp.status == 401
    assert tokens.rejected == ["old"]
    assert recorder.count == 1


async def test_token_not_sent_to_another_origin_on_redirect(upstream, aiohttp_server, make_client):
    recorder, server = upstream
    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/landing", elsewhere)
    other = await aiohttp_server(app)
    location = str(other.make_url("/landing"))
    recorder.then(302, headers={"Location": location})
    client = await make_client()
    async with client.get(str(server.make_url("/x")), token="secret-token") as resp:
        assert resp.status == 200
    assert _auth(recorder) == ["Bearer secret-token"]
    assert seen == [None]


async def test_refresh_may_use_the_same_client(upstream, make_client):
    recorder, server = upstream
    recorder.then(401).then(200, access_token="fresh")
    client = await make_client()

    class ViaClient:
        """A source that refreshes with a request through the client it serves."""

        async def access_token(self) -> str:
            return "stale"

        async def refresh_after_unauthorized(self, rejected: str) -> str | None:
            async with client.post(str(server.make_url("/token")), data={"grant": "x"}) as r:
                return (await r.json())["access_token"]

    async with client.get(str(server.make_url("/x")), token=ViaClient()) as resp:
        assert resp.status == 200
    assert [(seen.path, seen.headers.get("Authorization")) for seen in recorder.requests] == [
        ("/x", "Bearer stale"),
        ("/token", None),
        ("/x", "Bearer fresh"),
    ]

"""The default `authenticate_request`: a Bearer API key checked against its stored hash."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..apikeys import NO_KEY_HASH, secret_matches, split_api_key
from ..db.repositories import find_active_key
from ..hookspecs import hookimpl
from ..types import Principal

if TYPE_CHECKING:
    from aiohttp import web

    from ..host import Gateway
    from ..types import Event

KEY_REVOKED = "api_key.revoked"


class VerifiedKeys:
    """Keys looked up recently: (tenant id, secret hash, scopes) with an expiry, bounded in size.

    Every API request authenticates; on SQLite a lookup costs a thread hop, so a short cache
    is most of the API's throughput. The secret is still checked against the hash every time.
    When an entry expires under load, the requests that miss it share one lookup instead of
    each making their own (a stampede that queues dozens of reads behind the writer).

    Unknown key ids are remembered too, for the same time, apart from the verified keys so
    that a flood of made-up ids cannot push real keys out: otherwise an unknown id cost a
    read every time and answered measurably slower than a wrong secret (telling a prober which
    ids exist), and made the database the target of the flood. A remembered miss cannot shut
    out a key created later: a key id is 120 random bits drawn when the key is made, so no
    caller can ask for it before it exists, and a miss lives no longer than a verified key.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, tuple[str, str, str]]] = OrderedDict()
        self._misses: OrderedDict[str, float] = OrderedDict()  # key id -> expiry
        self._loading: dict[str, asyncio.Future[tuple[str, str, str] | None]] = {}

    async def fetch(
        self, key_id: str, load: Callable[[str], Awaitable[tuple[str, str, str] | None]]
    ) -> tuple[str, str, str] | None:
        """The cached entry, else what ``load`` finds (one load at a time per key)."""
        found = self.get(key_id)
        if found is not None or self.missed(key_id):
            return found
        if self.ttl <= 0:  # no cache: every request reads, so a revocation is seen at once
            return await load(key_id)
        loading = self._loading.get(key_id)
        if loading is None:
            loading = self._loading[key_id] = asyncio.ensure_future(self._load(key_id, load))
        # A request that goes away must not cancel the lookup the others wait for.
        return await asyncio.shield(loading)

    async def _load(self, key_id: str, load) -> tuple[str, str, str] | None:
        try:
            found = await load(key_id)
        finally:
            self._loading.pop(key_id, None)
        if found is not None:
            self.put(key_id, found)
        else:
            self.put_miss(key_id)
        return found

    def get(self, key_id: str) -> tuple[str, str, str] | None:
        entry = self._entries.get(key_id)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(key_id, None)
            return None
        return entry[1]

    def put(self, key_id: str, found: tuple[str, str, str]) -> None:
        if self.ttl <= 0:
            return
        self._entries[key_id] = (time.monotonic() + self.ttl, found)
        self._entries.move_to_end(key_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def missed(self, key_id: str) -> bool:
        """Whether ``key_id`` was looked up lately and is no active key."""
        expiry = self._misses.get(key_id)
        if expiry is None or expiry < time.monotonic():
            self._misses.pop(key_id, None)
            return False
        return True

    def put_miss(self, key_id: str) -> None:
        if self.ttl <= 0:
            return
        self._misses[key_id] = time.monotonic() + self.ttl
        self._misses.move_to_end(key_id)
        while len(self._misses) > self.max_entries:
            self._misses.popitem(last=False)

    def forget(self, key_id: str) -> None:
        self._entries.pop(key_id, None)
        self._misses.pop(key_id, None)


_caches: weakref.WeakKeyDictionary[Gateway, VerifiedKeys] = weakref.WeakKeyDictionary()


def _cache_for(gateway: Gateway) -> VerifiedKeys:
    cache = _caches.get(gateway)
    if cache is None:
        cache = _caches[gateway] = VerifiedKeys(gateway.settings.auth.key_cache_seconds)
    return cache


def bearer_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@hookimpl(trylast=True)
async def authenticate_request(gateway: Gateway, request: web.Request) -> Principal | None:
    presented = bearer_token(request)
    parts = split_api_key(presented) if presented else None
    if parts is None:
        return None
    key_id, secret = parts
    found = await _cache_for(gateway).fetch(key_id, lambda k: find_active_key(gateway.engine, k))
    if found is None:
        # The same hash and comparison as a known id with a wrong secret: no timing difference.
        secret_matches(secret, NO_KEY_HASH)
        return None
    tenant_id, secret_hash, scopes = found
    if not secret_matches(secret, secret_hash):
        return None
    return Principal(tenant_id=tenant_id, key_id=key_id, scopes=frozenset(scopes.split()))


@hookimpl
def track_event(gateway: Gateway, event: Event) -> None:
    if event.name == KEY_REVOKED:
        _cache_for(gateway).forget(event.data["keyId"])

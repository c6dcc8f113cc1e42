"""The default `authenticate_request`: a Bearer API key checked against its stored hash."""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..apikeys import secret_matches, split_api_key
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
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, tuple[str, str, str]]] = OrderedDict()

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

    def forget(self, key_id: str) -> None:
        self._entries.pop(key_id, None)


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
    cache = _cache_for(gateway)
    found = cache.get(key_id)
    if found is None:
        found = await find_active_key(gateway.engine, key_id)
        if found is None:
            return None
        cache.put(key_id, found)
    tenant_id, secret_hash, scopes = found
    if not secret_matches(secret, secret_hash):
        return None
    return Principal(tenant_id=tenant_id, key_id=key_id, scopes=frozenset(scopes.split()))


@hookimpl
def track_event(gateway: Gateway, event: Event) -> None:
    if event.name == KEY_REVOKED:
        _cache_for(gateway).forget(event.data["keyId"])

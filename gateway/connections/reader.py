"""Batched reads of connections and their sealed tokens: concurrent callers share one query.

Every health check and every publish attempt starts by reading its connection and opening its
tokens. Alone, each read is a session of its own (begin, two selects, rollback), and fifty at
once queue for the pool's connections. Here the reads asked for while a query runs are answered
together by the next one, which starts after they were asked: nobody gets a row older than
their request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import select

from ..db.models import ConnectionRow, SealedSecretRow
from ..errors import ResourceNotFound
from ..vault import Sealed, Secret
from .store import credentials_of

if TYPE_CHECKING:
    from ..credentials import Credentials
    from ..host import Gateway

MAX_BATCH = 500
Loaded = tuple[ConnectionRow, "Credentials"]


class ConnectionReader:
    """Reads (row, credentials) by connection id, many callers to a query."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._waiting: dict[str, list[asyncio.Future[Loaded]]] = {}
        self._reader: asyncio.Task | None = None
        self.queries = 0  # batches, and the reads they answered (the mean batch size)
        self.answered = 0

    async def read(self, connection_id: str) -> Loaded:
        """The connection's row and its credentials (without a token source).

        :raises ResourceNotFound: no such connection.
        """
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(connection_id, []).append(future)
        if self._reader is None:
            # Not the caller's task: a caller that gives up must not cancel a query mid-way.
            self._reader = asyncio.create_task(self._drain(), name="connection-reader")
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                ids = list(self._waiting)[:MAX_BATCH]
                batch = {cid: self._waiting.pop(cid) for cid in ids}
                try:
                    loaded = await self._load(ids)
                except Exception as err:  # the database is down: every caller hears it
                    for futures in batch.values():
                        _settle(futures, error=err)
                    continue
                self.queries += 1
                for cid, futures in batch.items():
                    self.answered += len(futures)
                    found = loaded.get(cid)
                    if found is None:
                        _settle(futures, error=ResourceNotFound(f"no connection {cid}"))
                    elif isinstance(found, Exception):
                        _settle(futures, error=found)
                    else:
                        _settle(futures, result=found)
        finally:
            self._reader = None

    async def _load(self, ids: list[str]) -> dict[str, Loaded | Exception]:
        async with self.gateway.session() as session:
            rows = (
                await session.execute(select(ConnectionRow).where(ConnectionRow.id.in_(ids)))
            ).scalars()
            rows = list(rows)
            secret_ids = [row.credentials_secret_id for row in rows if row.credentials_secret_id]
            secrets = {}
            if secret_ids:
                found = await session.execute(
                    select(SealedSecretRow).where(SealedSecretRow.id.in_(secret_ids))
                )
                secrets = {secret.id: secret for secret in found.scalars()}
        loaded: dict[str, Loaded | Exception] = {}
        for row in rows:
            try:
                opened = self._open(secrets.get(row.credentials_secret_id or ""))
            except Exception as err:  # e.g. a key gone from the ring: this caller's problem
                loaded[row.id] = err
            else:
                loaded[row.id] = (row, credentials_of(row, opened))
        return loaded

    def _open(self, sealed: SealedSecretRow | None) -> Secret | None:
        if sealed is None:
            return None
        return self.gateway.vault.open(
            Sealed(sealed.key_id, sealed.ciphertext), bound_to=sealed.associated_data()
        )


def _settle(
    futures: list[asyncio.Future[Loaded]],
    *,
    result: Loaded | None = None,
    error: Exception | None = None,
) -> None:
    for future in futures:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

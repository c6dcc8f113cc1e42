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
from ..vault import Sealed
from .store import credentials_of

if TYPE_CHECKING:
    from ..credentials import Credentials
    from ..host import Gateway

MAX_BATCH = 500
Fetched = tuple[ConnectionRow, SealedSecretRow | None]


class ConnectionReader:
    """Reads connection rows, and their sealed tokens, by id: many callers to a query."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._waiting: dict[str, list[asyncio.Future[Fetched]]] = {}
        self._secrets_wanted: set[str] = set()
        self._reader: asyncio.Task | None = None
        self.queries = 0  # batches, and the reads they answered (the mean batch size)
        self.answered = 0

    async def row(self, connection_id: str) -> ConnectionRow:
        """The connection's row.

        :raises ResourceNotFound: no such connection.
        """
        row, _ = await self._fetch(connection_id, secret=False)
        return row

    async def credentials(self, connection_id: str) -> tuple[ConnectionRow, Credentials]:
        """The connection's row and its credentials (without a token source).

        :raises ResourceNotFound: no such connection.
        """
        row, sealed = await self._fetch(connection_id, secret=True)
        opened = None
        if sealed is not None:
            opened = self.gateway.vault.open(
                Sealed(sealed.key_id, sealed.ciphertext), bound_to=sealed.associated_data()
            )
        return row, credentials_of(row, opened)

    async def _fetch(self, connection_id: str, *, secret: bool) -> Fetched:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(connection_id, []).append(future)
        if secret:
            self._secrets_wanted.add(connection_id)
        if self._reader is None:
            # Not the caller's task: a caller that gives up must not cancel a query mid-way
            # (its future is cancelled instead, and the batch skips it).
            self._reader = asyncio.create_task(self._drain(), name="connection-reader")
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                ids = list(self._waiting)[:MAX_BATCH]
                batch = {cid: self._waiting.pop(cid) for cid in ids}
                with_secrets = self._secrets_wanted.intersection(ids)
                self._secrets_wanted.difference_update(ids)
                try:
                    fetched = await self._load(ids, with_secrets)
                except Exception as err:  # the database is down: every caller hears it
                    for futures in batch.values():
                        _settle(futures, error=err)
                    continue
                self.queries += 1
                for cid, futures in batch.items():
                    self.answered += len(futures)
                    found = fetched.get(cid)
                    if found is None:
                        _settle(futures, error=ResourceNotFound(f"no connection {cid}"))
                    else:
                        _settle(futures, result=found)
        finally:
            self._reader = None

    async def _load(self, ids: list[str], with_secrets: set[str]) -> dict[str, Fetched]:
        async with self.gateway.session() as session:
            found = await session.execute(select(ConnectionRow).where(ConnectionRow.id.in_(ids)))
            rows = list(found.scalars())
            secret_ids = [
                row.credentials_secret_id
                for row in rows
                if row.credentials_secret_id and row.id in with_secrets
            ]
            secrets = {}
            if secret_ids:
                found = await session.execute(
                    select(SealedSecretRow).where(SealedSecretRow.id.in_(secret_ids))
                )
                secrets = {secret.id: secret for secret in found.scalars()}
        return {row.id: (row, secrets.get(row.credentials_secret_id or "")) for row in rows}


def _settle(
    futures: list[asyncio.Future[Fetched]],
    *,
    result: Fetched | None = None,
    error: Exception | None = None,
) -> None:
    for future in futures:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

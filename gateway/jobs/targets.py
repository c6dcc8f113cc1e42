"""What a call about a job needs: its connector, its account and token, and credentials.

The jobs a worker batch claimed are loaded together: their connections, accounts and both
sealed secrets in one read, instead of three or four per job.
"""

from __future__ import annotations

import json
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import and_, select
from sqlalchemy.orm import aliased

from ..connections.store import credentials_with, token_pair
from ..connections.tokens import CLOCK_SKEW, ConnectionTokenSource
from ..connector import Connector
from ..credentials import Credentials
from ..db import sqlite_hop
from ..db.base import utcnow
from ..db.models import AccountRow, ConnectionRow, SealedSecretRow
from ..errors import GatewayError, NeedsReauth, UnsupportedCapability
from ..types import AccountRef, PublishRequest, RefreshKind
from ..vault import Sealed, Secret

if TYPE_CHECKING:
    from ..db.models import PublishJobRow
    from ..host import Gateway
    from ..vault import Vault


@dataclass(frozen=True, slots=True)
class Target:
    connector: Connector
    account: AccountRef
    request: PublishRequest
    credentials: Credentials


def publish_request(body: dict, platform: str, queued_at: datetime | None = None) -> PublishRequest:
    entry = (body.get("options") or {}).get(platform)
    return PublishRequest(
        title=body.get("title"),
        body=body.get("body"),
        media_urls=tuple(body.get("mediaUrls") or ()),
        link=body.get("link"),
        # Anything but an object is refused at submit, against the platform's options schema.
        options=dict(entry) if isinstance(entry, dict) else {},
        queued_at=queued_at,
    )


async def load_target(gateway: Gateway, job: PublishJobRow, *, active_only: bool = True) -> Target:
    """Everything a connector call about ``job`` needs.

    :raises NeedsReauth: the connection is not active (unless ``active_only`` is False).
    :raises UnsupportedCapability: the platform's plugin or the account is gone.
    """
    loaded = (await load_targets(gateway, [job], active_only=active_only))[job.id]
    if isinstance(loaded, GatewayError):
        raise loaded
    if loaded is not None:
        return loaded
    # Its token is due for a refresh: the token manager refreshes it (once across processes).
    return await _target_refreshed(gateway, job, active_only)


async def load_targets(
    gateway: Gateway, jobs: list[PublishJobRow], *, active_only: bool = True
) -> dict[str, Target | GatewayError | None]:
    """Each job's target, or the error its call would end with, from one read.

    None for a job whose token is due for a refresh: :func:`load_target` gets it through the
    token manager, which refreshes first.
    """
    found = await _read(gateway, jobs, active_only)
    now = utcnow()
    opened: dict = {}  # credentials by connection, tokens by account: opened once per read
    loaded: dict[str, Target | GatewayError | None] = {}
    for job in jobs:
        connection, account, account_secret, credentials_secret = found.get(
            (job.connection_id, job.account_id), (None, None, None, None)
        )
        if connection is None:
            connection = found.get(job.connection_id)
        try:
            loaded[job.id] = _target(
                gateway,
                job,
                connection,
                account,
                account_secret,
                credentials_secret,
                now,
                active_only,
                opened,
            )
        except GatewayError as err:
            loaded[job.id] = err
    return loaded


async def _read(gateway: Gateway, jobs: list[PublishJobRow], active_only: bool) -> dict:
    """Rows by (connection id, account id), and connections by id (their accounts may be gone)."""
    account_ids = sorted({job.account_id for job in jobs})
    connection_ids = sorted({job.connection_id for job in jobs})
    async with gateway.engine.connect() as connection:
        if sqlite_hop.available(connection):  # one statement, outside any transaction
            rows = await _plain_rows(connection, active_only, account_ids, connection_ids)
        else:
            query = _query(active_only, account_ids, connection_ids)
            async with gateway.session() as session:
                rows = (await session.execute(query)).all()
    found: dict = {}
    for connection, account, a_secret, c_secret in rows:
        found[connection.id] = connection
        if account is not None:
            found[(connection.id, account.id)] = (connection, account, a_secret, c_secret)
    return found


_ACCOUNT_SECRET = aliased(SealedSecretRow, name="account_secret")
_CREDENTIALS_SECRET = aliased(SealedSecretRow, name="credentials_secret")
# Each entity of the read: its row class, and how the query names it.
_ENTITIES = (
    (ConnectionRow, ConnectionRow),
    (AccountRow, AccountRow),
    (SealedSecretRow, _ACCOUNT_SECRET),
    (SealedSecretRow, _CREDENTIALS_SECRET),
)


def _query(active_only: bool, account_ids, connection_ids):
    """Connections with the jobs' accounts on them and both their sealed secrets.

    ``account_ids`` and ``connection_ids``: lists, or (SQLite) a JSON array parameter each.
    """
    account_match = and_(
        AccountRow.connection_id == ConnectionRow.id, AccountRow.id.in_(account_ids)
    )
    if active_only:
        account_match = and_(account_match, AccountRow.active.is_(True))
    return (
        select(*(entity for _, entity in _ENTITIES))
        .select_from(ConnectionRow)
        .outerjoin(AccountRow, account_match)
        .outerjoin(_ACCOUNT_SECRET, _ACCOUNT_SECRET.id == AccountRow.token_secret_id)
        .outerjoin(
            _CREDENTIALS_SECRET, _CREDENTIALS_SECRET.id == ConnectionRow.credentials_secret_id
        )
        .where(ConnectionRow.id.in_(connection_ids))
    )


def _plain(row_class) -> type:
    """A named tuple of the columns of ``row_class``'s table, standing for one of its rows."""
    return namedtuple(row_class.__name__, [c.key for c in row_class.__table__.c])


_PLAIN = {
    row_class: _plain(row_class) for row_class in (ConnectionRow, AccountRow, SealedSecretRow)
}
_COLUMNS = [
    getattr(entity, c.key).expression
    for row_class, entity in _ENTITIES
    for c in row_class.__table__.c
]


@lru_cache(maxsize=16)
def _prepared(dialect, active_only: bool) -> sqlite_hop.Prepared:
    """The SQLite read, compiled once: the ids go in as JSON arrays (``json_each``), so that
    the statement is the same whatever their number."""
    each = sqlite_hop.each_value
    query = _query(active_only, each("account_ids"), each("connection_ids"))
    return sqlite_hop.Prepared(dialect, query.with_only_columns(*_COLUMNS))


async def _plain_rows(connection, active_only: bool, account_ids, connection_ids) -> list[tuple]:
    """The read's rows, each entity's columns as a named tuple (None where an outer join
    found nothing): plain values are all it needs, and they cost far less than ORM objects."""
    values = {"account_ids": json.dumps(account_ids), "connection_ids": json.dumps(connection_ids)}
    found = await sqlite_hop.fetch(
        connection, _prepared(connection.dialect, active_only), _COLUMNS, values
    )
    rows = []
    for row in found:
        parts, start = [], 0
        for row_class, _ in _ENTITIES:
            width = len(row_class.__table__.c)
            part = row[start : start + width]
            start += width
            parts.append(None if part[0] is None else _PLAIN[row_class](*part))
        rows.append(tuple(parts))
    return rows


def _target(
    gateway: Gateway,
    job: PublishJobRow,
    connection: ConnectionRow | None,
    account: AccountRow | None,
    account_secret: SealedSecretRow | None,
    credentials_secret: SealedSecretRow | None,
    now: datetime,
    active_only: bool,
    opened: dict,
) -> Target | None:
    connector = gateway.connector(job.platform)
    if connector is None:
        raise UnsupportedCapability(f"no plugin provides {job.platform!r} any more")
    if connection is None or (active_only and connection.status != "active"):
        raise NeedsReauth("the connection needs reconnecting")
    if account is None:
        raise UnsupportedCapability(f"account {job.account_id} is no longer available")
    if connection.status != "active":  # as the token manager answers for it
        raise NeedsReauth(f"connection {connection.id} needs reconnecting ({connection.status})")
    if _refresh_may_be_due(gateway, connection, now):
        return None
    # Each secret is opened once per read, however many of the jobs use it.
    if account.id not in opened:
        opened[account.id] = (
            _open(gateway.vault, account_secret) if account.token_secret_id else None
        )
    if connection.id not in opened:
        opened[connection.id] = _tokens(gateway, connection, credentials_secret)
    return Target(
        connector=connector,
        account=AccountRef.of(account, opened[account.id]),
        request=publish_request(job.request_json, job.platform, job.created_at),
        credentials=credentials_with(connection, *opened[connection.id]),
    )


async def _target_refreshed(gateway: Gateway, job: PublishJobRow, active_only: bool) -> Target:
    credentials = await gateway.tokens.credentials(job.connection_id)
    found = await _read(gateway, [job], active_only)
    _, account, account_secret, _ = found.get(
        (job.connection_id, job.account_id), (None, None, None, None)
    )
    if account is None:
        raise UnsupportedCapability(f"account {job.account_id} is no longer available")
    token = _open(gateway.vault, account_secret) if account.token_secret_id else None
    return Target(
        connector=gateway.connector(job.platform),
        account=AccountRef.of(account, token),
        request=publish_request(job.request_json, job.platform, job.created_at),
        credentials=credentials,
    )


def _refresh_may_be_due(gateway: Gateway, connection: ConnectionRow, now: datetime) -> bool:
    """Whether the token manager might refresh before handing these credentials out.

    A superset of its own test (with room for the clock moving on), so that whenever it
    would refresh, it is asked.
    """
    connector = gateway.connectors.get(connection.platform)
    if connector is None or connector.refresh_policy.kind is RefreshKind.NONE:
        return False
    soon = now + CLOCK_SKEW + timedelta(seconds=5)
    return any(
        moment is not None and moment <= soon
        for moment in (connection.next_refresh_at, connection.token_expires_at)
    )


def _open(vault: Vault, row: SealedSecretRow | None) -> Secret | None:
    if row is None:
        return None
    bound_to = SealedSecretRow.associated_data(row)  # an ORM row or its plain stand-in
    return vault.open(Sealed(row.key_id, row.ciphertext), bound_to=bound_to)


def _tokens(
    gateway: Gateway, connection: ConnectionRow, sealed: SealedSecretRow | None
) -> tuple[Secret | None, Secret | None, ConnectionTokenSource]:
    """The connection's access and refresh tokens, and the token source the outbound client
    uses (shared by the jobs of the connection: a refresh after a 401 serves them all)."""
    access, refresh = token_pair(_open(gateway.vault, sealed))
    source = ConnectionTokenSource(
        gateway.tokens, connection.id, access.reveal() if access is not None else None
    )
    return access, refresh, source

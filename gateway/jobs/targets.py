"""What a call about a job needs: its connector, its account and token, and credentials.

The jobs a worker batch claimed are loaded together: their connections, accounts and both
sealed secrets in one read, instead of three or four per job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, select
from sqlalchemy.orm import aliased

from ..connections.tokens import CLOCK_SKEW, ConnectionTokenSource
from ..connector import Connector
from ..credentials import Credentials
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


def publish_request(body: dict, platform: str) -> PublishRequest:
    options = body.get("options") or {}
    return PublishRequest(
        title=body.get("title"),
        body=body.get("body"),
        media_urls=tuple(body.get("mediaUrls") or ()),
        link=body.get("link"),
        options=dict(options.get(platform) or {}),
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
            )
        except GatewayError as err:
            loaded[job.id] = err
    return loaded


async def _read(gateway: Gateway, jobs: list[PublishJobRow], active_only: bool) -> dict:
    """Rows by (connection id, account id), and connections by id (their accounts may be gone)."""
    account_secret = aliased(SealedSecretRow)
    credentials_secret = aliased(SealedSecretRow)
    account_match = and_(
        AccountRow.connection_id == ConnectionRow.id,
        AccountRow.id.in_({job.account_id for job in jobs}),
    )
    if active_only:
        account_match = and_(account_match, AccountRow.active.is_(True))
    query = (
        select(ConnectionRow, AccountRow, account_secret, credentials_secret)
        .outerjoin(AccountRow, account_match)
        .outerjoin(account_secret, account_secret.id == AccountRow.token_secret_id)
        .outerjoin(credentials_secret, credentials_secret.id == ConnectionRow.credentials_secret_id)
        .where(ConnectionRow.id.in_({job.connection_id for job in jobs}))
    )
    found: dict = {}
    async with gateway.session() as session:
        for connection, account, a_secret, c_secret in await session.execute(query):
            found[connection.id] = connection
            if account is not None:
                found[(connection.id, account.id)] = (connection, account, a_secret, c_secret)
    return found


def _target(
    gateway: Gateway,
    job: PublishJobRow,
    connection: ConnectionRow | None,
    account: AccountRow | None,
    account_secret: SealedSecretRow | None,
    credentials_secret: SealedSecretRow | None,
    now: datetime,
    active_only: bool,
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
    token = _open(gateway.vault, account_secret) if account.token_secret_id else None
    return Target(
        connector=connector,
        account=AccountRef.of(account, token),
        request=publish_request(job.request_json, job.platform),
        credentials=_credentials(gateway, connection, credentials_secret),
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
        request=publish_request(job.request_json, job.platform),
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
    return vault.open(Sealed(row.key_id, row.ciphertext), bound_to=row.associated_data())


def _credentials(
    gateway: Gateway, connection: ConnectionRow, sealed: SealedSecretRow | None
) -> Credentials:
    """The connection's credentials as the token manager hands them out (its ``_read``)."""
    access = refresh = None
    secret = _open(gateway.vault, sealed)
    if secret is not None:
        fields = json.loads(secret.reveal())
        access = Secret(fields["access_token"]) if fields.get("access_token") else None
        refresh = Secret(fields["refresh_token"]) if fields.get("refresh_token") else None
    source = ConnectionTokenSource(
        gateway.tokens, connection.id, access.reveal() if access is not None else None
    )
    return Credentials(
        connection_id=connection.id,
        platform=connection.platform,
        access_token=access,
        refresh_token=refresh,
        expires_at=connection.token_expires_at,
        refresh_expires_at=connection.refresh_expires_at,
        scopes=tuple(connection.scopes.split()),
        external_user_id=connection.external_user_id,
        metadata=dict(connection.metadata_json or {}),
        token=source,
    )

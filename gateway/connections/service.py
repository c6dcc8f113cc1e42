"""Creating, updating and removing connections and their accounts, in one transaction each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from ..db.base import utcnow
from ..db.connections import AccountRepository, ConnectionRepository
from ..db.jobs import JobRepository
from ..db.models import AccountRow, ConnectionRow
from ..db.repositories import SecretRepository
from ..errors import Conflict, PlatformError, ResourceNotFound, UnsupportedCapability
from ..ids import new_id
from ..types import AccountInfo, Authorization, Event
from ..webhooks import secret_urls
from .store import (
    ACCOUNT_TOKEN_PURPOSE,
    health_offset,
    merged_with_stored,
    open_credentials,
    seal_token,
    token_blob,
    token_columns,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..host import Gateway

log = structlog.get_logger("gateway.connections")


@dataclass(frozen=True, slots=True)
class Saved:
    connection: ConnectionRow
    created: bool


async def save_connection(
    gateway: Gateway,
    *,
    tenant_id: str,
    platform: str,
    authorization: Authorization,
    accounts: list[AccountInfo],
    reconnect_id: str | None = None,
) -> Saved:
    """Create the connection, or update the one for the same platform user; all or nothing.

    A reconnect (``reconnect_id``) must bring back the same external account. An update keeps
    the stored refresh token when the new token set has none.
    """
    connector_cls = gateway.connectors.get(platform)
    now = utcnow()
    async with gateway.transaction() as session:
        repo = ConnectionRepository(session)
        existing = await repo.by_external_user(tenant_id, platform, authorization.external_user_id)
        if reconnect_id is not None:
            target = await repo.get(reconnect_id, tenant_id=tenant_id)
            if target is None or target.platform != platform:
                raise ResourceNotFound(f"no connection {reconnect_id}")
            if target.external_user_id != authorization.external_user_id:
                raise Conflict(
                    f"connection {reconnect_id} belongs to another {platform} account; "
                    "connect this one as a new connection instead"
                )
            existing = target
        token = authorization.token
        if existing is not None:
            stored = await open_credentials(session, gateway.vault, existing)
            token = merged_with_stored(token, stored)
        columns = token_columns(token, connector_cls.refresh_policy, now)
        common = {
            "status": "active",
            "display_name": authorization.display_name[:300],
            "metadata_json": dict(authorization.metadata),
            **columns,
        }
        secrets = SecretRepository(session, gateway.vault)
        if existing is None:
            row = ConnectionRow(
                id=new_id("conn"),
                tenant_id=tenant_id,
                platform=platform,
                external_user_id=authorization.external_user_id,
                health="unknown",
                **common,
            )
            sealed = await seal_token(session, gateway.vault, token, tenant_id)
            row.credentials_secret_id = sealed.id
            interval = timedelta(seconds=gateway.settings.connections.health_interval_seconds)
            row.next_health_check_at = now + health_offset(row.id, interval)
            session.add(row)
            await session.flush()
            created = True
        else:
            row = existing
            for key, value in common.items():
                setattr(row, key, value)
            row.credential_version += 1
            row.refresh_lease_owner = row.refresh_lease_until = None
            row.updated_at = now
            if row.credentials_secret_id:
                await secrets.overwrite(row.credentials_secret_id, token_blob(token))
            else:
                row.credentials_secret_id = (
                    await seal_token(session, gateway.vault, token, tenant_id)
                ).id
            await session.flush()
            created = False
        await _sync_accounts(session, gateway, row, accounts)
    gateway.telemetry.instruments.accounts_fetched.set(len(accounts), {"platform": platform})
    log.info(
        "connection.saved",
        connection_id=row.id,
        platform=platform,
        created=created,
        accounts=len(accounts),
    )
    return Saved(row, created)


async def _sync_accounts(
    session: AsyncSession, gateway: Gateway, row: ConnectionRow, accounts: list[AccountInfo]
) -> None:
    """Make the account rows match what the platform listed; vanished ones become inactive."""
    secrets = SecretRepository(session, gateway.vault)
    known = {
        (a.kind, a.external_id): a
        for a in await AccountRepository(session).for_connection(row.id, active_only=False)
    }
    seen = set()
    now = utcnow()
    for info in accounts:
        key = (info.kind, info.external_id)
        seen.add(key)
        account = known.get(key)
        if account is None:
            account = AccountRow(
                id=new_id("acct"),
                connection_id=row.id,
                tenant_id=row.tenant_id,
                platform=row.platform,
                kind=info.kind,
                external_id=info.external_id,
            )
            session.add(account)
        account.name = info.name[:300]
        account.metadata_json = dict(info.metadata)
        account.active = True
        account.updated_at = now
        if info.token:
            if account.token_secret_id:
                await secrets.overwrite(account.token_secret_id, info.token)
            else:
                stored = await secrets.store(
                    info.token, purpose=ACCOUNT_TOKEN_PURPOSE, tenant_id=row.tenant_id
                )
                account.token_secret_id = stored.id
    for key, account in known.items():
        if key not in seen:
            account.active = False
            account.updated_at = now
    await session.flush()


async def connect_api_key(
    gateway: Gateway, *, tenant_id: str, platform: str, api_key: str
) -> Saved:
    """Check a key with the platform first; only a key the platform accepts is stored."""
    from ..credentials import Credentials, StaticToken
    from ..errors import FieldProblem, Unprocessable
    from ..vault import Secret

    connector = _connector(gateway, platform)
    if not type(connector).accepts_api_keys():
        raise UnsupportedCapability(
            f"{platform} connects through OAuth: POST /api/oauth/{platform}/start instead"
        )
    try:
        authorization = await connector.verify_api_key(api_key)
        credentials = Credentials(
            connection_id="",
            platform=platform,
            access_token=Secret(api_key),
            external_user_id=authorization.external_user_id,
            metadata=dict(authorization.metadata),
            token=StaticToken(api_key),
        )
        accounts = await connector.list_accounts(credentials)
    except (PlatformError, UnsupportedCapability) as err:
        if isinstance(err, PlatformError) and err.retryable:
            raise
        raise Unprocessable(
            f"{platform} refused the API key: {err.detail}",
            errors=[FieldProblem("apiKey", err.code, err.detail)],
        ) from err
    return await save_connection(
        gateway,
        tenant_id=tenant_id,
        platform=platform,
        authorization=authorization,
        accounts=accounts,
    )


async def refresh_accounts(gateway: Gateway, connection_id: str) -> list[AccountRow]:
    """List the accounts again at the platform and store what it says."""
    row = await get_connection(gateway, connection_id)
    connector = _connector(gateway, row.platform)
    credentials = await gateway.tokens.credentials(row.id)
    accounts = await call_platform(gateway, row, connector.list_accounts(credentials))
    async with gateway.transaction() as session:
        fresh = await ConnectionRepository(session).get(row.id)
        await _sync_accounts(session, gateway, fresh, accounts)
    gateway.telemetry.instruments.accounts_fetched.set(len(accounts), {"platform": row.platform})
    async with gateway.session() as session:
        return await AccountRepository(session).for_connection(row.id)


async def call_platform(gateway: Gateway, row: ConnectionRow, call: Any) -> Any:
    """Await a connector call for a connection; a refused credential marks it for reconnecting."""
    from ..errors import NeedsReauth

    try:
        return await call
    except NeedsReauth as err:
        await gateway.tokens.mark_needs_reconnect(row, err.detail)
        raise


async def get_connection(
    gateway: Gateway, connection_id: str, *, tenant_id: str | None = None
) -> ConnectionRow:
    row = await gateway.tokens.reader.row(connection_id)
    if tenant_id is not None and row.tenant_id != tenant_id:
        raise ResourceNotFound(f"no connection {connection_id}")
    return row


async def delete_connection(gateway: Gateway, row: ConnectionRow) -> ConnectionRow:
    """Revoke at the platform where it can, erase the sealed tokens, mark it revoked.

    A platform that cannot be reached does not keep the tokens alive here: they are erased
    either way, and the failure is logged.
    """
    connector = gateway.connector(row.platform)
    if connector is not None and row.status != "revoked":
        async with gateway.session() as session:
            credentials = await open_credentials(session, gateway.vault, row)
        try:
            await connector.revoke(credentials)
        except (PlatformError, UnsupportedCapability) as err:
            log.warning("connection.revoke_failed", connection_id=row.id, error=err.code)
    async with gateway.transaction() as session:
        repo = ConnectionRepository(session)
        secrets = SecretRepository(session, gateway.vault)
        for account in await AccountRepository(session).for_connection(row.id, active_only=False):
            if account.token_secret_id:
                secret_id, account.token_secret_id = account.token_secret_id, None
                await session.flush()
                await secrets.delete(secret_id)
            account.active = False
        if row.credentials_secret_id:
            await repo.set_fields(row.id, credentials_secret_id=None)
            await secrets.delete(row.credentials_secret_id)
        await secret_urls.forget(session, gateway, row.id)  # its webhook URL stops working
        cancelled = await JobRepository(session).cancel_for_connection(row.id)
        await repo.set_fields(
            row.id,
            status="revoked",
            health="unknown",
            next_refresh_at=None,
            next_health_check_at=None,
            reconnect_by=None,
            token_expires_at=None,
        )
    await gateway.emit(
        Event(
            "connection.revoked",
            tenant_id=row.tenant_id,
            data={"connectionId": row.id, "cancelledJobs": cancelled},
        )
    )
    return await get_connection(gateway, row.id)


def _connector(gateway: Gateway, platform: str):
    connector = gateway.connector(platform)
    if connector is None:
        raise ResourceNotFound(f"no plugin provides platform {platform!r}")
    return connector

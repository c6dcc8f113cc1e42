"""What a call about a job needs: its connector, its account and token, and credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..connector import Connector
from ..credentials import Credentials
from ..db.connections import AccountRepository, ConnectionRepository
from ..db.repositories import SecretRepository
from ..errors import NeedsReauth, UnsupportedCapability
from ..types import AccountRef, PublishRequest

if TYPE_CHECKING:
    from ..db.models import PublishJobRow
    from ..host import Gateway


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
    connector = gateway.connector(job.platform)
    if connector is None:
        raise UnsupportedCapability(f"no plugin provides {job.platform!r} any more")
    async with gateway.session() as session:
        connection = await ConnectionRepository(session).get(job.connection_id)
        accounts = await AccountRepository(session).for_connection(
            job.connection_id, active_only=active_only
        )
        row = next((a for a in accounts if a.id == job.account_id), None)
        token = None
        if row is not None and row.token_secret_id:
            token = await SecretRepository(session, gateway.vault).open(row.token_secret_id)
    if connection is None or (active_only and connection.status != "active"):
        raise NeedsReauth("the connection needs reconnecting")
    if row is None:
        raise UnsupportedCapability(f"account {job.account_id} is no longer available")
    account = AccountRef.of(row, token)
    return Target(
        connector=connector,
        account=account,
        request=publish_request(job.request_json, job.platform),
        credentials=await gateway.tokens.credentials(job.connection_id),
    )

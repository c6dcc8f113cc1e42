"""Who may see what: a tenant sees only its own resources (others are 404), admins more."""

from __future__ import annotations

from aiohttp import web

from ..credentials import Credentials
from ..db.models import AccountRow
from ..db.repositories import SecretRepository
from ..errors import Forbidden, ResourceNotFound
from ..types import AccountRef
from .keys import gateway_of, principal_of


def require_admin(request: web.Request) -> None:
    """:raises Forbidden: unless the caller's key has the admin scope."""
    if not principal_of(request).is_admin:
        raise Forbidden("this needs an API key with the admin scope")


def ensure_owned(request: web.Request, owner_tenant_id: str | None, what: str) -> None:
    """A resource of another tenant answers exactly like one that does not exist.

    :raises ResourceNotFound: naming ``what``, never revealing that it exists elsewhere.
    """
    if owner_tenant_id != principal_of(request).tenant_id:
        raise ResourceNotFound(f"no {what}")


async def owned_account(request: web.Request, account_id: str) -> tuple[AccountRef, Credentials]:
    """A plugin route's target account: the caller's own and active, with its credentials.

    :raises ResourceNotFound: for an unknown or inactive account, or another tenant's.
    :raises NeedsReauth: when its connection needs reconnecting.
    """
    gateway = gateway_of(request)
    async with gateway.session() as session:
        row = await session.get(AccountRow, account_id)
        token = None
        if row is not None and row.token_secret_id:
            token = await SecretRepository(session, gateway.vault).open(row.token_secret_id)
    if row is None or not row.active:
        raise ResourceNotFound(f"no account {account_id}")
    ensure_owned(request, row.tenant_id, f"account {account_id}")
    credentials = await gateway.tokens.credentials(row.connection_id)
    account = AccountRef.of(row, token)
    return account, credentials

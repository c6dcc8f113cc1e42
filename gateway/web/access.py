"""Who may see what: a tenant sees only its own resources (others are 404), admins more."""

from __future__ import annotations

from aiohttp import web

from ..errors import Forbidden, ResourceNotFound
from .keys import principal_of


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

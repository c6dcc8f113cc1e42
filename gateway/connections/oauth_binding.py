"""Binding an OAuth state to the browser that follows its go link (RFC 9700 §4.7.1): ids and cookie.

``authorizationUrl`` is a one-time go link on the gateway. Following it sets a short-lived
HttpOnly cookie whose hash is stored with the state, then sends the browser to the platform;
the callback completes only in a browser that carries that cookie. A state (or the platform's
consent URL) passed to another browser is therefore worth nothing there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from ..db.models import OAuthStateRow
from ..digest import lookup_hash
from ..vault import Vault

COOKIE_PREFIX = "gw_oauth_"
_STATE_PURPOSE = "oauth_state"


@dataclass(frozen=True, slots=True)
class BindingCookie:
    """The cookie the go link sets; ``value`` is its only copy (the state keeps a hash)."""

    name: str
    value: str
    path: str
    max_age: int
    secure: bool


digest = lookup_hash  # the go link's id and the cookie's value are stored as this


def new_link_id() -> str:
    return secrets.token_urlsafe(32)  # 256 bits: the link is as unguessable as the state


def state_for(vault: Vault, link_id: str) -> str:
    """The state that goes with a go link.

    Derived (HMAC under a vault-derived key) rather than stored, so that the database holds
    neither the state nor the link, and the go route can still build the platform's URL.
    """
    key = vault.derive(_STATE_PURPOSE).encode()
    mac = hmac.new(key, link_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")  # 256 bits, 43 characters


def go_url(base_url: str, platform: str, link_id: str) -> str:
    return f"{base_url}/oauth/{platform}/go/{link_id}"


def cookie_name(state_hash: str) -> str:
    # One cookie per flow, so two flows started in one browser do not overwrite each other.
    return f"{COOKIE_PREFIX}{state_hash[:16]}"


def new_cookie(
    state_hash: str, *, callback: str, expires_at: datetime, now: datetime
) -> BindingCookie:
    """A fresh cookie for the callback only, living no longer than the state."""
    parts = urlsplit(callback)
    return BindingCookie(
        name=cookie_name(state_hash),
        value=secrets.token_urlsafe(32),
        path=parts.path,
        max_age=max(1, int((expires_at - now).total_seconds())),
        secure=parts.scheme == "https",
    )


def is_bound(record: OAuthStateRow, cookies: Mapping[str, str]) -> bool:
    """Whether this request comes from the browser that followed the state's go link."""
    value = cookies.get(cookie_name(record.state_hash))
    if record.binding_hash is None or not value:
        return False
    return hmac.compare_digest(digest(value), record.binding_hash)

"""Who may call a sandbox's control API: loopback peers, or holders of the control token."""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import hdrs, web

from .problems import problem


def peer_is_loopback(request: web.Request) -> bool:
    """Whether the TCP peer of ``request`` is on this machine's loopback.

    The socket's own peer address, never ``request.remote`` or ``X-Forwarded-For``: those can
    be rewritten by middlewares and headers, so a remote caller could claim to be local.
    """
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    # A Unix socket's peer is a path (or empty), an IP socket's a tuple; only the latter counts.
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return address.is_loopback


class ControlAccess:
    """The control API's door: with a token, its bearer from anywhere (loopback included);
    without one, loopback callers only.
    """

    def __init__(self, token: str | None = None) -> None:
        self._token = token.encode() if token else None

    def refusal(self, request: web.Request) -> web.Response | None:
        """None when ``request`` may use the control API, else the 401/403 answer."""
        if self._token is None:
            if peer_is_loopback(request):
                return None
            return problem(
                403,
                "Forbidden",
                "the sandbox control API answers loopback callers only; "
                "set sandbox.control_token to reach it from elsewhere",
            )
        scheme, _, presented = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), self._token
        ):
            return None
        return problem(
            401,
            "Unauthorized",
            "the sandbox control API needs Authorization: Bearer <sandbox.control_token>",
            headers={"WWW-Authenticate": 'Bearer realm="sandbox-control"'},
        )

"""Headers every response carries: no framing, no sniffing, no referrer leaks, no version banner."""

from __future__ import annotations

from aiohttp import web

SERVER = "gateway"  # aiohttp's default names itself and its version: a free hint to an attacker
# A route that needs its own value (the dashboard's Referrer-Policy, say) sets it and keeps it.
DEFAULTS = {
    "X-Frame-Options": "DENY",  # nothing here is meant to be framed (clickjacking)
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def secure_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` hook; it runs for every routed response, sub-apps' included."""
    response.headers["Server"] = SERVER
    for name, value in DEFAULTS.items():
        response.headers.setdefault(name, value)

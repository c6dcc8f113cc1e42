"""Registering a platform's routes under its real host names, each a path prefix of the sandbox."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler


class HostRoutes:
    """What ``Sandbox.setup_routes`` receives: ``add(host, method, path, handler)``.

    ``https://graph.facebook.com/v25.0/me`` becomes the route ``/graph.facebook.com/v25.0/me``, so
    a client of the real API reaches the sandbox by changing only its base URL. A host may itself
    be an aiohttp pattern (``{dc}.api.mailchimp.com``) for platforms whose host names vary.
    """

    def __init__(self, hosts: tuple[str, ...], router: web.UrlDispatcher) -> None:
        self._hosts = hosts
        self._router = router

    def add(self, host: str, method: str, path: str, handler: Handler) -> web.AbstractRoute:
        """Serve ``method`` ``path`` (aiohttp ``{var}`` patterns allowed) of ``host``."""
        if host not in self._hosts:
            # A typo here would silently serve a path no client of the real API ever calls.
            raise ValueError(f"host {host!r} is not one of the sandbox's hosts {self._hosts}")
        if not path.startswith("/"):
            raise ValueError(f"route path {path!r} must start with '/'")
        return self._router.add_route(method.upper(), f"/{host}{path}", handler)

"""The Sandbox base class: a platform emulator's app, control API, journal, faults and clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import structlog
from aiohttp import web

from . import paths
from .access import ControlAccess
from .bearer import bearer_token
from .clock import SandboxClock
from .concurrency import ConcurrencyLimit
from .consent import ConsentCallback, consent_page, redirect_with
from .control import ControlApi
from .faults import Faults
from .grants import TokenStatus
from .journal import JOURNAL_HEADERS, Journal, credential_fingerprint
from .problems import problem
from .ratelimit import RateLimitWindow
from .routes import HostRoutes
from .targets import WebhookTargets
from .tokens import TokenCheck, TokenStore

log = structlog.get_logger("gateway.sandbox")
# A fake secret for fake platforms; a test that verifies signatures passes its own.
DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"


class Sandbox:
    """Subclass per platform: set ``platform`` and ``hosts``, override ``setup_routes``.

    Mutable emulator state (posts, accounts, counters) belongs in ``reset_state``, which
    ``__init__`` calls once and ``POST /_control/reset`` calls again, so the state a test starts
    from and the state after a reset cannot drift apart. Create rate-limit windows in
    ``__init__`` with ``rate_limit``; a reset empties them.
    """

    platform: ClassVar[str] = ""
    # The platform's real host names; each is a path prefix below the sandbox root.
    hosts: ClassVar[tuple[str, ...]] = ()
    # Request headers the journal keeps (authorization only as a fingerprint).
    journal_headers: ClassVar[tuple[str, ...]] = JOURNAL_HEADERS
    # Upload limit when standalone; mounted in the gateway, the gateway's own limit applies.
    max_body_bytes: ClassVar[int] = 64 * 1024 * 1024
    # At most this many requests in flight per credential (Mailchimp: 10); None: no limit.
    max_concurrent_requests: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        auto_approve: bool = False,
        clock: SandboxClock | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        control_token: str | None = None,
        webhook_targets: WebhookTargets | None = None,
    ) -> None:
        self.auto_approve = auto_approve
        # The control API lists tokens and can break every tenant's publishing: loopback
        # callers only, or with a token, its bearers only.
        self.control_access = ControlAccess(control_token)
        # Where `POST /_control/webhooks` may send; None: nowhere.
        self.webhook_targets = webhook_targets
        self.clock = clock or SandboxClock()
        self.webhook_secret = webhook_secret
        self.tokens = TokenStore(self.clock)
        self.journal = Journal(self.clock, headers=self.journal_headers)
        self.faults = Faults(self.fault_body)
        self._windows: list[RateLimitWindow] = []
        self.concurrency = (
            ConcurrencyLimit(
                self.max_concurrent_requests, self.concurrency_key, self.too_many_concurrent
            )
            if self.max_concurrent_requests
            else None
        )
        self.reset_state()

    # -- what a platform overrides ---------------------------------------------------------

    def setup_routes(self, routes: HostRoutes) -> None:
        """Add the platform's routes: ``routes.add(host, method, path, handler)``."""

    def reset_state(self) -> None:
        """(Re)create the emulator's own state; called by ``__init__`` and by every reset."""

    def snapshot(self) -> dict[str, Any]:
        """``GET /_control/state``: at least ``posts``, ``tokens`` and ``accounts``."""
        return {"posts": [], "tokens": self.tokens.listing(), "accounts": []}

    def build_webhook(self, event: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """Body and headers of a webhook delivery, signed with the platform's scheme.

        Raise ``ControlInputError("event", …)`` for an event the platform does not send.
        """
        raise NotImplementedError

    def build_handshake(self, payload: dict[str, Any]) -> dict[str, str]:
        """Query parameters of the platform's subscription-verification GET (event
        ``handshake`` of ``POST /_control/webhooks``); ``{}`` for a bare GET."""
        raise NotImplementedError

    def fault_body(self, status: int) -> Any:
        """The body of an injected fault that names no body: the platform's error for ``status``."""
        return {"error": {"message": f"sandbox fault: HTTP {status}", "status": status}}

    def concurrency_key(self, request: web.Request) -> str | None:
        """Whose budget of concurrent requests a request counts against: its credential."""
        authorization = request.headers.get("Authorization")
        return credential_fingerprint(authorization) if authorization else None

    def too_many_concurrent(self, request: web.Request, limit: int) -> web.StreamResponse:
        """The answer to one request more than ``max_concurrent_requests`` in flight."""
        message = f"more than {limit} simultaneous connections"
        return web.json_response({"error": {"message": message, "status": 429}}, status=429)

    def no_route(self, request: web.Request, allowed_methods: set[str]) -> web.Response:
        """The answer to a path (or method) the emulator does not serve."""
        path = paths.relative_path(request)
        if allowed_methods:
            return web.json_response(
                {"error": {"message": f"{request.method} is not allowed on {path}"}},
                status=405,
                headers={"Allow": ", ".join(sorted(allowed_methods))},
            )
        message = f"the {self.platform} sandbox does not serve {path}"
        return web.json_response({"error": {"message": message}}, status=404)

    def deny_params(self, request: web.Request) -> dict[str, str | None]:
        """Query parameters of the redirect after Deny on the consent page."""
        return {
            "error": "access_denied",
            "error_description": "The user denied the request.",
            "state": request.query.get("state"),
        }

    # -- helpers for platform handlers -----------------------------------------------------

    root_url = staticmethod(paths.root_url)
    relative_path = staticmethod(paths.relative_path)

    def rate_limit(self, limit: int, per_seconds: float) -> RateLimitWindow:
        """A rate-limit window on the sandbox clock, emptied by every reset."""
        window = RateLimitWindow(limit, per_seconds, self.clock)
        self._windows.append(window)
        return window

    def check_bearer(self, request: web.Request, *, query_param: str | None = None) -> TokenCheck:
        """The status of the request's bearer token (header, or ``query_param`` if given)."""
        token = bearer_token(request, param=query_param)
        if token is None:
            return TokenCheck(TokenStatus.MISSING, None)
        return self.tokens.check(token)

    def deny_redirect(self, request: web.Request) -> str:
        """Where Deny sends the browser: ``redirect_uri`` with ``deny_params``."""
        redirect_uri = request.query.get("redirect_uri")
        if not redirect_uri:
            raise web.HTTPBadRequest(text="redirect_uri is required")
        return redirect_with(redirect_uri, self.deny_params(request))

    async def consent_page(
        self,
        request: web.Request,
        *,
        app_name: str,
        scopes: Iterable[str],
        on_allow: ConsentCallback,
        on_deny: ConsentCallback | None = None,
    ) -> web.Response:
        """The login/consent page: Allow → ``on_allow``'s URL, Deny → ``on_deny``'s (default
        ``deny_redirect``); with ``auto_approve`` a GET allows at once.
        """
        return await consent_page(
            request,
            platform=self.platform,
            app_name=app_name,
            scopes=scopes,
            on_allow=on_allow,
            on_deny=on_deny or self.deny_redirect,
            auto_approve=self.auto_approve,
        )

    # -- serving -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: faults, journal, clock offset, tokens, rate windows, own state."""
        self.faults.clear()
        self.journal.clear()
        self.clock.reset()
        self.tokens.clear()
        for window in self._windows:
            window.reset()
        if self.concurrency is not None:
            self.concurrency.reset_peaks()
        self.reset_state()

    def build_app(self) -> web.Application:
        """The sandbox as an aiohttp app, to serve standalone or mount with ``add_subapp``."""
        # Journal outermost, so it records what the faults made of a request.
        # The concurrency limit sits outside the faults, so an injected delay holds its place.
        limit = [self.concurrency.middleware] if self.concurrency is not None else []
        app = web.Application(
            middlewares=[self.journal.middleware, *limit, self.faults.middleware],
            client_max_size=self.max_body_bytes,
        )
        ControlApi(self).install(app.router)
        self.setup_routes(HostRoutes(self.hosts, app.router))
        # Last: anything else below the root is still journaled and can still be faulted.
        app.router.add_route("*", "/{tail:.*}", self._unmatched)
        return app

    def run_standalone(
        self,
        host: str = "127.0.0.1",
        port: int = 8090,
        *,
        ready: Callable[[], None] | None = None,
    ) -> None:
        """Serve this sandbox on its own until interrupted (``gateway sandbox PLATFORM``);
        ``ready`` is called once it answers.

        :raises ListenError: the port is taken (nothing was started).
        """
        from ..web.listen import bind, off_loopback, run_app

        sockets = bind(host, port)
        exposed = off_loopback(sockets)
        if exposed:
            # Its demo credentials and token-issuing routes are then open to other machines.
            log.warning("sandbox.exposed", platform=self.platform, addresses=exposed)

        def announce() -> None:
            log.info("sandbox.standalone", platform=self.platform, url=f"http://{host}:{port}")
            if ready is not None:
                ready()

        run_app(self.build_app(), sockets, ready=announce)

    async def _unmatched(self, request: web.Request) -> web.Response:
        allowed: set[str] = set()
        own = request.match_info.route.resource
        for resource in request.app.router.resources():
            if resource is not own:
                _, methods = await resource.resolve(request)
                allowed |= methods
        path = paths.relative_path(request)
        if paths.is_control(path):
            # The control API is the gateway's own, not the platform's: problem+json.
            if allowed:
                detail = f"{request.method} is not allowed on {path}"
                headers = {"Allow": ", ".join(sorted(allowed))}
                return problem(405, "Method not allowed", detail, headers=headers)
            return problem(404, "Not found", f"no control route {path}")
        return self.no_route(request, allowed)

"""GET /dashboard: the health report as a page, behind an API-key sign-in (a session cookie)."""

from __future__ import annotations

import math
from functools import cache
from html import escape
from importlib.resources import files
from string import Template
from typing import Any

from aiohttp import web

from ...db.jobs import JobRepository
from ...ops.health import health_report
from ..keys import AUTH_FAILURES, gateway_of
from ..sessions import (
    COOKIE,
    LIFETIME,
    csrf_matches,
    csrf_token,
    end_session,
    open_session,
    session_principal,
    verify_api_key,
)
from ..textcheck import refuse_control
from .publish import dead_json

_WEB = files("gateway.web")
SECURITY_HEADERS = {
    # Scripts and styles only from this origin: nothing a page value could inject would run.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": with it, browsers send "Origin: null" on the page's own form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def _template(name: str) -> Template:
    return Template((_WEB / "templates" / name).read_text(encoding="utf-8"))


def install(app: web.Application) -> None:
    """The dashboard's routes: pages, not API (they are not in /openapi.json)."""
    app.router.add_get("/dashboard", dashboard)
    app.router.add_post("/dashboard/login", login)
    app.router.add_post("/dashboard/logout", logout)
    app.router.add_get("/dashboard/static/{name}", static)
    # Browsers ask every site for it: without one, each dashboard visit logged a 404.
    app.router.add_get("/favicon.ico", favicon)


def _page(html: str, status: int = 200) -> web.Response:
    return web.Response(
        text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS
    )


def _signin(error: str = "", status: int = 200) -> web.Response:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(_template("signin.html").substitute(error=message), status)


async def dashboard(request: web.Request) -> web.Response:
    gateway = gateway_of(request)
    token = request.cookies.get(COOKIE)
    principal = await session_principal(gateway, token) if token else None
    if principal is None:
        return _signin()
    report = await health_report(gateway, None if principal.is_admin else principal.tenant_id)
    async with gateway.session() as session:
        dead = await JobRepository(session).dead_page(principal.tenant_id, limit=200, after=None)
    scope = "all tenants" if principal.is_admin else f"tenant {principal.tenant_id}"
    html = _template("dashboard.html").substitute(
        csrf=csrf_token(token),
        scope=escape(scope),
        generated=escape(report["generatedAt"]),
        platforms=_rows(report["platforms"], _platform_cells, 8, "No platforms installed"),
        tokens=_rows(report["tokens"], _token_cells, 5, "No token expires within 7 days"),
        dlq=_rows([dead_json(j) for j in dead], _dead_cells, 6, "The dead-letter queue is empty"),
        errors=_rows(report["recentErrors"], _error_cells, 7, "No errors in 7 days"),
    )
    return _page(html)


async def login(request: web.Request) -> web.Response:
    if not _same_origin(request):
        return _signin("Sign in from this gateway's own page.", 403)
    form = await request.post()
    api_key = str(form.get("apiKey") or "")
    refuse_control([("apiKey", api_key)])  # a 400 before the key's id is looked up
    gateway = gateway_of(request)
    failures = request.app[AUTH_FAILURES]
    wait = math.ceil(failures.wait(request.remote))
    if wait:  # the API's limit, shared: signing in is another way to try a key
        page = _signin(f"Too many failed sign-ins from your address; try again in {wait} s.", 429)
        page.headers["Retry-After"] = str(wait)
        return page
    principal = await verify_api_key(gateway, api_key) if api_key else None
    if principal is None:
        if api_key:  # an empty form guesses nothing
            failures.failed(request.remote)
        return _signin("That API key is not valid (or was revoked).", 401)
    token = await open_session(gateway, principal)
    response = web.HTTPSeeOther("/dashboard")
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=gateway.settings.base_url.startswith("https://"),
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(COOKIE)
    form = await request.post()
    if token and csrf_matches(token, str(form.get("csrf") or "")):
        await end_session(gateway_of(request), token)
    response = web.HTTPSeeOther("/dashboard")
    response.del_cookie(COOKIE, path="/")
    raise response


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = (_WEB / "static" / name).read_text(encoding="utf-8")
    return web.Response(
        text=body,
        content_type=STATIC[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@cache
def _favicon() -> bytes:
    return (_WEB / "static" / "favicon.ico").read_bytes()


async def favicon(request: web.Request) -> web.Response:
    return web.Response(
        body=_favicon(),
        content_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def _same_origin(request: web.Request) -> bool:
    # Browsers send Origin on a form POST; a cross-site one must not sign anyone in (login CSRF).
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def _rows(items: list[dict[str, Any]], cells, columns: int, empty: str) -> str:
    if not items:
        return f'<tr><td class="empty" colspan="{columns}">{escape(empty)}</td></tr>'
    return "".join(cells(item) for item in items)


def _td(value: Any, css: str = "", field: str = "") -> str:
    text = "\N{EN DASH}" if value is None else str(value)
    attributes = (f' class="{escape(css)}"' if css else "") + (
        f' data-field="{field}"' if field else ""
    )
    return f"<td{attributes}>{escape(text)}</td>"


def _unit(value: Any, suffix: str) -> str | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # as the page's script shows it after a refresh: 1900, not 1900.0
    return None if value is None else f"{value}{suffix}"


def _platform_cells(p: dict[str, Any]) -> str:
    c, publishing = p["connections"], p["publishing"]
    return (
        f'<tr data-platform="{escape(p["platform"])}">'
        + _td(p["displayName"])
        + _td(p["status"], f"status {p['status']}")
        + _td(f"{c['healthy']}/{c['total']}")
        + _td(p["tokens"]["expiringSoon"])
        + _td(_unit(publishing["successRate24h"], "%"), field="success")
        + _td(_unit(publishing["p95LatencyMs"], " ms"), field="p95")
        + _td(_unit(publishing["p95QueueWaitMs"], " ms"), field="wait")
        + _td(publishing["published24h"])
        + _td(p["dlq"]["size"], field="dlq")
        + "</tr>"
    )


def _token_cells(t: dict[str, Any]) -> str:
    return (
        "<tr>"
        + _td(t["platform"])
        + _td(t["displayName"])
        + _td(t["status"], f"status {t['status']}")
        + _td(t["expiresAt"])
        + _td(t["hoursUntilExpiry"])
        + "</tr>"
    )


def _dead_cells(job: dict[str, Any]) -> str:
    job_id = escape(job["jobId"])
    button = f'<td><button type="button" data-replay="{job_id}">Replay</button></td>'
    return (
        f'<tr data-job="{job_id}">'
        + _td(job["jobId"])
        + _td(job["platform"])
        + _td(job["reasonCode"])
        + _td((job["error"] or {}).get("message"))
        + _td(job["deadAt"])
        + button
        + "</tr>"
    )


def _error_cells(e: dict[str, Any]) -> str:
    return (
        "<tr>"
        + _td(e["platform"])
        + _td(e["source"])
        + _td(e["errorType"])
        + _td(e["occurrences24h"])
        + _td(e["occurrences7d"])
        + _td(e["lastSeenAt"])
        + _td(e["lastMessage"])
        + "</tr>"
    )

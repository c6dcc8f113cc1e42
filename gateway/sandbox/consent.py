"""The OAuth consent page every emulator shows: app name, scopes, and Allow or Deny."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from html import escape

from aiohttp import web
from yarl import URL

# Given the authorization request, the URL to send the browser to (with code or error and state).
ConsentCallback = Callable[[web.Request], str | Awaitable[str]]

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body>
<main>
<h1>{app_name} wants to access your {platform} account</h1>
<p>It asks for:</p>
<ul>{scopes}</ul>
<form method="post" action="{action}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
<p><small>{platform} sandbox: nothing here is real.</small></p>
</main>
</body>
</html>
"""


def redirect_with(url: str, params: Mapping[str, str | None]) -> str:
    """``url`` with ``params`` appended to its query; None values are left out."""
    extra = {k: v for k, v in params.items() if v is not None}
    return str(URL(url).extend_query(extra)) if extra else url


def found(location: str) -> web.Response:
    """A 302 to ``location``."""
    return web.Response(status=302, headers={"Location": location})


def render_consent(*, platform: str, app_name: str, scopes: Iterable[str], action: str) -> str:
    """The consent page's HTML; every value from the request is escaped."""
    items = "".join(f"<li>{escape(scope)}</li>" for scope in scopes) or "<li>basic access</li>"
    return _PAGE.format(
        title=escape(f"{platform} sandbox: authorize {app_name}"),
        app_name=escape(app_name),
        platform=escape(platform),
        scopes=items,
        action=escape(action, quote=True),
    )


async def consent_page(
    request: web.Request,
    *,
    platform: str,
    app_name: str,
    scopes: Iterable[str],
    on_allow: ConsentCallback,
    on_deny: ConsentCallback,
    auto_approve: bool,
) -> web.Response:
    """GET shows the page (or, with ``auto_approve``, allows at once); POST carries the choice.

    The form posts back to the same path and query, so the authorization request's parameters
    (client_id, redirect_uri, state, code_challenge …) reach the callbacks on both methods.
    """
    if request.method == "GET":
        if auto_approve:
            return found(await _call(on_allow, request))
        page = render_consent(
            platform=platform, app_name=app_name, scopes=scopes, action=str(request.rel_url)
        )
        return web.Response(text=page, content_type="text/html")
    decision = (await request.post()).get("decision")
    if decision == "allow":
        return found(await _call(on_allow, request))
    if decision == "deny":
        return found(await _call(on_deny, request))
    return web.Response(status=400, text="decision must be 'allow' or 'deny'")


async def _call(callback: ConsentCallback, request: web.Request) -> str:
    result = callback(request)
    return await result if inspect.isawaitable(result) else result

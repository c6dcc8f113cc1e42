"""Walking an ``authorizationUrl`` as a browser does, keeping the go link's cookie for the callback.

``gateway demo``, ``gateway validate`` against the sandboxes and the tests all connect OAuth
accounts through this one walk, so none of them can skip the binding a real browser goes through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp


class ConsentError(RuntimeError):
    """A step of the walk did not answer as a browser would expect; the message says which."""


def browser(**kwargs: Any) -> aiohttp.ClientSession:
    """A client session with a browser's cookie jar (one that also keeps cookies of IP hosts)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kwargs)


async def open_link(http: aiohttp.ClientSession, authorization_url: str) -> str:
    """Follow ``authorizationUrl`` (the gateway's go link): the platform's consent URL.

    The go link's binding cookie stays in ``http``'s jar for the callback.
    """
    async with http.get(authorization_url, allow_redirects=False) as response:
        location = response.headers.get("Location")
        if response.status != 302 or not location:
            raise ConsentError(
                f"the authorization link answered {response.status}: {await response.text()}"
            )
    return location


async def consent(
    http: aiohttp.ClientSession,
    authorization_url: str,
    *,
    query: Mapping[str, str] | None = None,
    form: Sequence[tuple[str, str]] | None = None,
) -> str:
    """Follow the link and pass the consent page: the callback URL the platform sends back to.

    ``query`` adds parameters to the platform's consent URL (a sandbox's ``login_as``); a
    consent page that asks is answered by posting ``form`` (default: Allow). A sandbox that
    auto-approves redirects at once.
    """
    url = await open_link(http, authorization_url)
    if query:
        url += ("&" if "?" in url else "?") + urlencode(dict(query))
    if form is None:
        async with http.get(url, allow_redirects=False) as page:
            if page.status == 302:
                return _location(page)
            if page.status != 200:
                raise ConsentError(f"the consent page answered {page.status}: {await page.text()}")
        form = [("decision", "allow")]
    async with http.post(url, data=list(form), allow_redirects=False) as answered:
        return _location(answered)


def _location(response: aiohttp.ClientResponse) -> str:
    location = response.headers.get("Location")
    if response.status != 302 or not location:
        raise ConsentError(f"the consent page did not redirect (HTTP {response.status})")
    return location

"""Rewriting a platform's real URLs to its sandbox: ``<sandbox_url>/<host><path>?<query>``."""

from __future__ import annotations

from urllib.parse import urlsplit


def route_url(url: str, sandbox_url: str | None) -> str:
    """Where ``url`` (a real platform URL) is reached: itself, or under ``sandbox_url``.

    ``https://graph.facebook.com/v25.0/me?fields=id`` with the sandbox
    ``http://127.0.0.1:8080/sandbox/meta`` becomes
    ``http://127.0.0.1:8080/sandbox/meta/graph.facebook.com/v25.0/me?fields=id``. An explicit
    port is kept in the host segment; user info and the fragment are dropped (neither reaches a
    server). A URL already under the sandbox is returned unchanged, so links the sandbox hands
    out (paging, media) can be followed as they are.
    """
    if not sandbox_url:
        return url
    base = sandbox_url.rstrip("/")
    if url == base or url.startswith(base + "/"):
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"an absolute http(s) URL is needed to route to a sandbox: {url!r}")
    host = parts.netloc.rsplit("@", 1)[-1]
    query = f"?{parts.query}" if parts.query else ""
    return f"{base}/{host}{parts.path}{query}"

"""Where a sandbox is mounted: its root URL and a request's path below that root."""

from __future__ import annotations

import weakref

from aiohttp import web

CONTROL_PREFIX = "/_control/"
_prefixes: weakref.WeakKeyDictionary[web.Application, str] = weakref.WeakKeyDictionary()


def mount_prefix(request: web.Request) -> str:
    """The prefix the sandbox app is mounted at: ``""`` standalone, else e.g. ``/sandbox/meta``.

    aiohttp does not hand a sub-application its prefix, but the parent's router holds it: the
    resource that points at the sub-app. ``add_prefix`` propagates down nested mounts, so the
    innermost parent's entry already carries the full prefix.
    """
    apps = request.match_info.apps
    if len(apps) < 2:
        return ""
    parent, child = apps[-2], apps[-1]
    # An app is mounted once and its prefix never changes: look it up once, not per request
    # (the gateway's router has a hundred resources, and every sandbox middleware asks).
    prefix = _prefixes.get(child)
    if prefix is None:
        prefix = _prefixes[child] = _find_prefix(parent, child)
    return prefix


def _find_prefix(parent: web.Application, child: web.Application) -> str:
    for resource in parent.router.resources():
        info = resource.get_info()
        if info.get("app") is child:
            return str(info["prefix"]).rstrip("/")
    return ""


def root_url(request: web.Request) -> str:
    """Absolute URL of the sandbox root as the caller reached it, without a trailing slash."""
    return f"{request.url.origin()}{mount_prefix(request)}"


def relative_path(request: web.Request) -> str:
    """The request's path below the sandbox root, e.g. ``/graph.facebook.com/v25.0/me``."""
    prefix = mount_prefix(request)
    return request.path[len(prefix) :] or "/"


def is_control(path: str) -> bool:
    """Whether a path below the root belongs to the control API (neither journaled nor faulted)."""
    return path.startswith(CONTROL_PREFIX)

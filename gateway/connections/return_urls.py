"""Where the OAuth callback may send the browser: allow-listed return URLs, compared normalised."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import BadRequest, FieldProblem, InvalidInput
from ..settings import Settings

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "0.0.0.0"})  # noqa: S104 (compared, not bound)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Browsers read a backslash as a slash and drop tabs and newlines; Python's parser does neither,
# so a URL holding one would be checked as one place and followed to another.
_AMBIGUOUS = re.compile(r"[\\\x00-\x20\x7f]")
_HOST = re.compile(r"^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$")


@dataclass(frozen=True, slots=True)
class ReturnUrl:
    """A URL in the one spelling it is compared and redirected in."""

    scheme: str
    host: str
    port: int
    path: str
    query: str
    fragment: str

    def __str__(self) -> str:
        default = self.port == _DEFAULT_PORTS[self.scheme]
        netloc = self.host if default else f"{self.host}:{self.port}"
        return urlunsplit((self.scheme, netloc, self.path, self.query, self.fragment))

    def under(self, prefix: ReturnUrl) -> bool:
        """Same origin, and the path is the prefix's or below it on a segment boundary."""
        if (self.scheme, self.host, self.port) != (prefix.scheme, prefix.host, prefix.port):
            return False
        base = prefix.path.rstrip("/")
        return not base or self.path == base or self.path.startswith(base + "/")


class UnsafeUrl(ValueError):
    """A URL refused before any comparison: the reason is for the client."""


def parse(url: str) -> ReturnUrl:
    """Normalise an absolute http(s) URL: lowercase scheme, IDNA host, explicit port, a path.

    :raises UnsafeUrl: for anything a browser could read otherwise than this parser does.
    """
    if _AMBIGUOUS.search(url):
        raise UnsafeUrl("backslashes, spaces and control characters are not allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise UnsafeUrl(f"not a URL: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise UnsafeUrl("use an absolute http(s) URL")
    if "@" in parts.netloc:
        raise UnsafeUrl("user names and passwords are not allowed in the URL")
    host = _host(parts.hostname or "", bracketed=parts.netloc.startswith("["))
    path = parts.path or "/"
    for segment in path.split("/"):
        # A dot segment moves the browser up ("/allowed/../elsewhere"); an encoded slash is a
        # separator to some servers and not to this comparison.
        decoded = unquote(segment).lower()
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            raise UnsafeUrl("dot segments and encoded slashes are not allowed in the path")
    return ReturnUrl(
        scheme, host, port or _DEFAULT_PORTS[scheme], path, parts.query, parts.fragment
    )


def _host(hostname: str, *, bracketed: bool) -> str:
    if bracketed:
        host = f"[{hostname}]"
    else:
        try:
            host = hostname.rstrip(".").encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UnsafeUrl("the host name is not a valid (IDNA) name") from None
    if not host or not _HOST.match(host):
        raise UnsafeUrl("the host name is not a valid name")
    return host


def allowed_return_urls(settings: Settings) -> tuple[str, ...]:
    """The configured prefixes, and always the gateway's own base URL.

    The gateway's own pages are no open redirect, and listing them in the config tied the list
    to one port: after ``GATEWAY_SERVER_PORT=8090`` the natural returnUrl was refused.
    """
    own = [f"{settings.base_url}/"]
    if not settings.server.public_url and settings.server.host in _LOCAL_HOSTS:
        # A browser on this machine reaches a loopback or all-interfaces listener by either name.
        port = settings.server.port
        own += [f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"]
    return (*settings.oauth.allowed_return_urls, *own)


def check_return_url(settings: Settings, return_url: str | None) -> str | None:
    """The normalised return URL if allow-listed: the callback must never be an open redirect.

    :raises BadRequest: the URL is malformed or ambiguous.
    :raises InvalidInput: it is well formed but under none of the allowed prefixes.
    """
    if return_url is None:
        return None
    try:
        wanted = parse(return_url)
    except UnsafeUrl as err:
        raise BadRequest(
            f"returnUrl is refused: {err}",
            errors=[FieldProblem("returnUrl", "invalid", str(err))],
        ) from None
    if not any(wanted.under(prefix) for prefix in _prefixes(settings)):
        raise InvalidInput(
            "returnUrl is neither under the gateway's own URL nor in oauth.allowed_return_urls",
            errors=[FieldProblem("returnUrl", "not_allowed", "ask the operator to allow it")],
        )
    return str(wanted)


def _prefixes(settings: Settings) -> list[ReturnUrl]:
    prefixes = []
    for entry in allowed_return_urls(settings):
        try:
            prefixes.append(parse(entry))
        except UnsafeUrl:
            continue  # an entry nothing can match; settings validation is the place to say so
    return prefixes

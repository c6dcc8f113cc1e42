"""Redaction of secrets from URLs, headers and mappings before they are logged or traced."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"

# Key names whose values are secrets wherever they appear (query strings, JSON, log fields).
SECRET_KEY_PATTERN = re.compile(
    r"(token|secret|password|passwd|apikey|api_key|authorization|cookie|"
    r"client_secret|code_verifier|signature|appsecret_proof|^code$|^key$|ciphertext)",
    re.IGNORECASE,
)

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)

# Path parameters that are credentials though their names do not say so: the OAuth go link's
# one-time id. A parameter named like a secret (``{secret}``, ``{token}``) needs no entry here.
SECRET_PATH_PARAMS = frozenset({"linkId"})

# Bearer tokens or API keys that slip into free text.
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def is_secret_key(name: str) -> bool:
    """Whether a field called ``name`` holds a secret."""
    return bool(SECRET_KEY_PATTERN.search(name))


def redact_url(url: str) -> str:
    """The URL with user info and secret query parameters replaced."""
    parts = urlsplit(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if is_secret_key(k) else v) for k, v in pairs], safe="[]")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_path(path: str, params: Mapping[str, str]) -> str:
    """``path`` with the segments its route's secret parameters matched replaced.

    ``params`` is the route's match (aiohttp's ``match_info``): ``/webhooks/mailchimp/<token>``
    is logged as ``/webhooks/mailchimp/[redacted]``.
    """
    hidden = {
        value
        for name, value in params.items()
        if value and (is_secret_key(name) or name in SECRET_PATH_PARAMS)
    }
    if not hidden:
        return path
    return "/".join(REDACTED if segment in hidden else segment for segment in path.split("/"))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credential-bearing headers replaced."""
    return {
        k: (REDACTED if k.lower() in SECRET_HEADERS or is_secret_key(k) else v)
        for k, v in headers.items()
    }


def redact_text(text: str) -> str:
    """Free text with bearer and basic credentials replaced."""
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


# A ``code`` is an OAuth authorization code in a callback's query or a token request's form; in
# an error object (``{"error": {"code": "rate_limited", …}}``, a problem's ``errors``) it is the
# error's code, which the operator reading the log needs.
ERROR_KEYS = frozenset({"error", "errors"})


def redact_value(key: str, value: Any, *, in_error: bool = False) -> Any:
    """Recursively redact ``value`` found under ``key`` (``in_error``: a field of an error)."""
    if is_secret_key(key) and not (in_error and key == "code") and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, Mapping):
        inside = key in ERROR_KEYS
        return {k: redact_value(str(k), v, in_error=inside) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v, in_error=in_error) for v in value]
    if isinstance(value, str):
        if "://" in value and "?" in value:
            return redact_text(redact_url(value))
        return redact_text(value)
    return value

"""The journal: every platform request a sandbox received, with what it answered."""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.typedefs import Handler

from .clock import SandboxClock, rfc3339
from .paths import is_control, relative_path

MAX_TEXT_BODY = 10 * 1024
JOURNAL_HEADERS = ("content-type", "user-agent", "idempotency-key", "authorization")
# Fields that carry credentials when a platform takes them outside the Authorization header.
REDACTED_FIELDS = frozenset(
    {"access_token", "refresh_token", "client_secret", "fb_exchange_token", "input_token"}
)
FAULTED = web.RequestKey("sandbox_faulted", bool)


def credential_fingerprint(secret: str) -> str:
    """How the journal shows a credential: enough to tell two apart, never the value itself."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def redact_authorization(value: str) -> str:
    """``Bearer abc`` → ``Bearer sha256:…``: the scheme stays readable, the credential does not."""
    scheme, _, credential = value.strip().partition(" ")
    if not credential:
        return credential_fingerprint(scheme)
    return f"{scheme} {credential_fingerprint(credential.strip())}"


@dataclass(slots=True)
class JournalEntry:
    """One platform request and the status it was answered with (None while in flight)."""

    method: str
    path: str
    query: dict[str, Any]
    headers: dict[str, str]
    body: Any
    body_size: int
    time: float
    status: int | None = None
    faulted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "bodySize": self.body_size,
            "status": self.status,
            "time": rfc3339(self.time),
            "faulted": self.faulted,
        }


class Journal:
    """A bounded record of platform requests, filled by its aiohttp middleware.

    Control requests are left out: a test reading the journal wants to see what the code under
    test sent, not its own bookkeeping.
    """

    def __init__(
        self,
        clock: SandboxClock,
        *,
        headers: Iterable[str] = JOURNAL_HEADERS,
        redacted: Iterable[str] = REDACTED_FIELDS,
        limit: int = 5000,
    ) -> None:
        self._clock = clock
        self._headers = tuple(h.lower() for h in headers)
        self._redacted = frozenset(redacted)
        # Bounded: a sandbox mounted in a long-running gateway must not grow without end.
        self._entries: deque[JournalEntry] = deque(maxlen=limit)

    @property
    def entries(self) -> list[JournalEntry]:
        return list(self._entries)

    def find(self, *, method: str | None = None, path: str | None = None) -> list[JournalEntry]:
        """Entries whose method equals and whose path matches the glob, oldest first."""
        return [
            e
            for e in self._entries
            if (method is None or e.method == method.upper())
            and (path is None or fnmatchcase(e.path, path))
        ]

    def clear(self) -> None:
        self._entries.clear()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = relative_path(request)
        if is_control(path):
            return await handler(request)
        raw = await request.read()  # cached by aiohttp, so the handler can read it again
        # Appended on arrival, so the journal is in the order requests came in and a request
        # still in flight (a delayed one) is already visible, with no status yet.
        entry = JournalEntry(
            method=request.method,
            path=path,
            query=self._redact(_multi(request.query.items())),
            headers=self._select_headers(request),
            body=self._parse_body(request.content_type, raw),
            body_size=len(raw),
            time=self._clock.timestamp(),
        )
        self._entries.append(entry)
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            entry.status = exc.status
            raise
        except Exception:
            entry.status = 500  # what aiohttp answers for an unhandled error
            raise
        finally:
            entry.faulted = request.get(FAULTED, False)
        entry.status = response.status
        return response

    def _select_headers(self, request: web.Request) -> dict[str, str]:
        selected = {}
        for name in self._headers:
            value = request.headers.get(name)
            if value is None:
                continue
            selected[name] = redact_authorization(value) if name == "authorization" else value
        return selected

    def _parse_body(self, content_type: str, raw: bytes) -> Any:
        if not raw:
            return None
        if content_type == "application/json" or content_type.endswith("+json"):
            try:
                parsed = json.loads(raw)
            except ValueError:
                return _truncated(raw)
            return self._redact(parsed) if isinstance(parsed, dict) else parsed
        if content_type == "application/x-www-form-urlencoded":
            try:
                pairs = parse_qsl(raw.decode(), keep_blank_values=True)
            except UnicodeDecodeError:
                return _truncated(raw)
            return self._redact(_multi(pairs))
        return _truncated(raw)

    def _redact(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            key: credential_fingerprint(str(value))
            if key in self._redacted and isinstance(value, str)
            else value
            for key, value in fields.items()
        }


def _multi(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Query or form pairs as a dict: a repeated name becomes a list, in order."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key not in result:
            result[key] = value
        elif isinstance(result[key], list):
            result[key].append(value)
        else:
            result[key] = [result[key], value]
    return result


def _truncated(raw: bytes) -> str:
    return raw[:MAX_TEXT_BODY].decode("utf-8", errors="replace")

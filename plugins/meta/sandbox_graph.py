"""The Graph API's wire conventions in the emulator: error envelopes, ids, usage headers."""

from __future__ import annotations

import itertools
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

# The app every sandbox client uses (the core's `<platform>-sandbox-client` convention).
APP_ID = "meta-sandbox-client"
APP_SECRET = "meta-sandbox-secret"
APP_NAME = "Meta sandbox app"
# Graph ids are long decimal strings; a counter keeps them unique and readable in tests.
_IDS = itertools.count(17_841_400_000_000_001)


def new_id() -> str:
    return str(next(_IDS))


class GraphError(Exception):
    """An error answer of the Graph API, raised anywhere in a handler."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        status: int = 400,
        type_: str = "OAuthException",
        is_transient: bool | None = None,
        user_title: str | None = None,
        user_msg: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.status = status
        self.type = type_
        self.is_transient = is_transient
        self.user_title = user_title
        self.user_msg = user_msg
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return envelope(
            self.code,
            self.message,
            subcode=self.subcode,
            type_=self.type,
            is_transient=self.is_transient,
            user_title=self.user_title,
            user_msg=self.user_msg,
        )

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def envelope(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    type_: str = "OAuthException",
    is_transient: bool | None = None,
    user_title: str | None = None,
    user_msg: str | None = None,
) -> dict[str, Any]:
    """``{"error": {message, type, code, error_subcode?, is_transient?, ..., fbtrace_id}}``."""
    error: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if is_transient is not None:
        error["is_transient"] = is_transient
    if user_title:
        error["error_user_title"] = user_title
    if user_msg:
        error["error_user_msg"] = user_msg
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return {"error": error}


def fb_time(timestamp: float) -> str:
    """Graph's timestamp format: ``2019-01-02T18:31:28+0000``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def usage_percent(used: int, limit: int) -> int:
    return min(100, used * 100 // limit)


def app_usage(percent: int) -> str:
    return json.dumps(
        {"call_count": percent, "total_time": percent // 2, "total_cputime": percent // 2}
    )


def buc_usage(object_id: str, kind: str, percent: int, regain_minutes: int) -> str:
    entry = {
        "type": kind,
        "call_count": percent,
        "total_cputime": percent // 2,
        "total_time": percent // 2,
        "estimated_time_to_regain_access": regain_minutes,
    }
    return json.dumps({object_id: [entry]})

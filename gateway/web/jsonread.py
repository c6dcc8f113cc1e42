"""The one reader of JSON request bodies: strict UTF-8, no lone surrogates, bounded nesting."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import BadRequest, FieldProblem, InvalidInput

# Nesting beyond this is refused (400). A constant, not a setting: it guards the recursion of
# the parser, the schema validator and every later json.dumps (Python's limit is ~1000 frames),
# not a business rule. The deepest body a route takes (a post's `options.<platform>`) is about
# six levels, so 32 leaves plugins room without coming near the interpreter's limit.
MAX_JSON_DEPTH = 32
# A lone surrogate can only come from a \uD800-\uDFFF escape (strict UTF-8 refuses encoded
# ones): without such an escape in the raw bytes, no string needs looking at.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json(raw: bytes, charset: str | None = None) -> Any:
    """The JSON value of a request body.

    :raises BadRequest: for bytes that are not text in ``charset`` (UTF-8 by default), not
        JSON, or nested deeper than :data:`MAX_JSON_DEPTH` (naming the field where it can).
    :raises InvalidInput: for a string (or key) holding a lone surrogate, which no database
        or platform can take as text (the field is named).
    """
    try:
        text = raw.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise BadRequest(f"the body is not valid {charset or 'UTF-8'} text") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep("(body)") from None
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None
    # Cheap bounds first: fewer brackets than the limit cannot nest past it.
    deep = raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
    if deep or _SURROGATE_ESCAPE.search(raw):
        _check(value)
    return value


def _check(value: Any) -> None:
    """Walk ``value`` (without recursion) for nesting and unencodable strings."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            _encodable(item, path or "(body)")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise _too_deep(path or "(body)")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    _encodable(key, _join(path, key))
                stack.append((child, _join(path, key), depth + 1))


def _join(path: str, key: Any) -> str:
    # Field names as the schema errors give them ("options.meta.0"), printable even when bad.
    name = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{path}.{name}" if path else name


def _encodable(text: str, field: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            "the body holds text that cannot be encoded as UTF-8",
            errors=[
                FieldProblem(field, "invalid_text", "a lone surrogate (U+D800-DFFF) is no text")
            ],
        ) from None


def _too_deep(field: str) -> BadRequest:
    return BadRequest(
        f"the body is nested deeper than {MAX_JSON_DEPTH} levels",
        errors=[FieldProblem(field, "too_deep", f"nest at most {MAX_JSON_DEPTH} levels")],
    )

"""Text from paths, query strings and forms, refused (400) before any SQL when it cannot be an id.

PostgreSQL cannot take a NUL in text at all (SQLite can, and then finds nothing), so such
input used to be a 500 on one database and a 404 on the other. Ids never hold control
characters; query values and form fields may hold tabs and newlines, never a NUL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import BadRequest, FieldProblem

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The same rule as a JSON Schema pattern, declared on ids so the document says it.
PLAIN_TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"


def refuse_control(fields: Iterable[tuple[str, str]]) -> None:
    """:raises BadRequest: naming each field whose value holds a control character."""
    _refuse(fields, _CONTROL, "must not contain control characters")


def refuse_nul(fields: Iterable[tuple[str, str]]) -> None:
    """:raises BadRequest: naming each field whose name or value holds a NUL."""
    _refuse(fields, None, "must not contain a NUL character")


def _refuse(fields: Iterable[tuple[str, str]], pattern: re.Pattern | None, message: str) -> None:
    problems = [
        FieldProblem(_printable(name), "invalid_text", message)
        for name, value in fields
        if (pattern.search(value) if pattern is not None else "\x00" in value or "\x00" in name)
    ]
    if problems:
        raise BadRequest("the request holds characters no id or value may hold", errors=problems)


def _printable(name: str) -> str:
    return name.encode("unicode_escape").decode("ascii")

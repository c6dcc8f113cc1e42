"""A request's parameters wherever a platform takes them: query, form, multipart or JSON body."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aiohttp import web

# ``name[0][key]=value``: PHP-style brackets, the way PHP's http_build_query (and Meta's own
# doc samples, ``breakdowns[0]=client``) spell arrays and maps in a query or form.
_BRACKETED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_TRUE, _FALSE = ("true", "1"), ("false", "0")


class ParamError(ValueError):
    """A parameter (``name``) or the body (``name`` None) that cannot be read.

    The platform turns it into its own error answer; ``message`` names the parameter.
    """

    def __init__(self, name: str | None, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class RequestParams(Mapping[str, str]):
    """Every parameter of a request by name, each as the text a form would carry.

    Arrays and objects, whether they came as a JSON body's values or as ``name[0]=…`` brackets,
    are held as JSON text: the spelling form-encoding clients send (Meta's SDK sends
    ``metric=["reach","likes"]``), so a value reads the same whatever the request's encoding.
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RequestParams({self._values!r})"

    def list_of(self, name: str) -> list[str] | None:
        """A list parameter: a JSON array (in a form, a query or a JSON body) or ``a,b,c``."""
        raw = self._values.get(name)
        if raw is None:
            return None
        if not raw.lstrip().startswith("["):
            return [item.strip() for item in raw.split(",") if item.strip()]
        try:
            items = json.loads(raw)
        except ValueError:
            raise ParamError(
                name, f"Param {name} must be a JSON array or a comma-separated list"
            ) from None
        if not isinstance(items, list) or any(isinstance(i, dict | list) for i in items):
            raise ParamError(name, f"Param {name} must be an array of strings")
        return [_text(item) for item in items if item is not None]

    def json_of(self, name: str) -> Any:
        """A structured parameter (an array or an object), decoded; None when absent."""
        raw = self._values.get(name)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ParamError(name, f"Param {name} must be JSON") from None

    def flag(self, name: str, default: bool) -> bool:
        """A boolean parameter: ``true``/``1`` or ``false``/``0``."""
        raw = self._values.get(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ParamError(name, f"Param {name} must be a boolean")


async def read_params(request: web.Request) -> RequestParams:
    """The query's parameters, then the body's over them (a form, multipart or a JSON object).

    Raises ``ParamError`` for a body that is not valid JSON or not an object.
    """
    values = _from_pairs(request.query.items())
    if request.method not in ("GET", "HEAD") and request.body_exists:
        # The sandbox journal has read the body already; aiohttp keeps the bytes, so they are
        # parsed here (``request.post()`` would look for a multipart body in a drained stream).
        raw = await request.read()
        content_type = request.content_type
        if content_type == "application/json" or content_type.endswith("+json"):
            values.update(_from_json(raw))
        elif content_type == "multipart/form-data":
            values.update(_from_pairs(_multipart_fields(request.headers["Content-Type"], raw)))
        elif content_type in ("", "application/x-www-form-urlencoded"):
            values.update(_from_pairs((await request.post()).items()))
    return RequestParams(values)


def _from_json(raw: bytes) -> dict[str, str]:
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ParamError(None, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ParamError(None, "The request body must be a JSON object")
    # JSON null is no value: a client that serialises its unset fields sends them as null.
    return {str(key): _text(value) for key, value in body.items() if value is not None}


def _from_pairs(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Query or form fields by name; ``name[…]`` fields assembled into one JSON value."""
    values: dict[str, str] = {}
    nested: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(value, str):
            continue  # an uploaded file is not a parameter
        match = _BRACKETED.match(key)
        if match is None:
            values[key] = value
            continue
        name, path = match.group(1), _SEGMENT.findall(match.group(2))
        node = nested.setdefault(name, {})
        for segment in path[:-1]:
            node = node.setdefault(segment or str(len(node)), {})
            if not isinstance(node, dict):
                raise ParamError(name, f"Param {name} mixes a value and an array or object")
        # An empty segment (``a[]=x``) appends.
        node[path[-1] or str(len(node))] = value
    for name, tree in nested.items():
        values[name] = json.dumps(_arrays(tree), separators=(",", ":"))
    return values


def _arrays(node: Any) -> Any:
    """Maps keyed ``0..n-1`` are arrays (``a[0]=x&a[1]=y`` is ``["x","y"]``)."""
    if not isinstance(node, dict):
        return node
    items = {key: _arrays(value) for key, value in node.items()}
    # As in PHP, ``01`` is a name, not an index.
    if items and all(key.isdigit() and str(int(key)) == key for key in items):
        indexes = sorted(int(key) for key in items)
        if indexes == list(range(len(indexes))):
            return [items[str(i)] for i in indexes]
    return items


def _multipart_fields(content_type: str, raw: bytes) -> list[tuple[str, Any]]:
    """The fields of a ``multipart/form-data`` body: text for fields, bytes for files."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    fields: list[tuple[str, Any]] = []
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        if part.get_filename() is not None:
            fields.append((name, data))
        else:
            fields.append((name, data.decode(part.get_content_charset() or "utf-8", "replace")))
    return fields


def _text(value: Any) -> str:
    """A JSON value as form text: strings as they are, the rest as JSON (``true``, ``12``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))

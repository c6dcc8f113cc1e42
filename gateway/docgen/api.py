"""docs/api.md: the hand-written guide, then every route and schema of the OpenAPI document."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from .. import errors
from ..web.problems import PROBLEM_TYPE_BASE
from .markdown import anchor, cell, table

GUIDE = "api_guide.md"
MARKERS = ("<!-- generated: problem types -->", "<!-- generated: client events -->")
_REF = "#/components/schemas/"


def render_api(document: dict[str, Any], header: str) -> str:
    guide = files(__package__).joinpath(GUIDE).read_text(encoding="utf-8")
    title, _, body = guide.partition("\n")
    generated = (problem_types(), client_events(document))
    for marker, text in zip(MARKERS, generated, strict=True):
        if body.count(marker) != 1:
            raise ValueError(f"{GUIDE} must hold {marker} once")
        body = body.replace(marker, text)
    parts = [title, header, body.strip(), routes(document), schemas(document)]
    return "\n\n".join(parts) + "\n"


def problem_types() -> str:
    """The codes of the errors a route can answer with (the platform categories included:
    connecting and refreshing meet the platform there and then)."""
    by_code: dict[str, tuple[set[int], list[str]]] = {}
    for error in (*_subclasses(errors.ApiError), *_subclasses(errors.PlatformError)):
        statuses, titles = by_code.setdefault(error.code, (set(), []))
        statuses.add(error.status)
        if error.title not in titles:
            titles.append(error.title)
    rows = [
        (f"`{code}`", ", ".join(map(str, sorted(statuses))), "; ".join(titles))
        for code, (statuses, titles) in sorted(by_code.items(), key=lambda i: (min(i[1][0]), i[0]))
    ]
    return table((f"`{PROBLEM_TYPE_BASE}<code>`", "status", "title"), rows)


def _subclasses(base: type) -> list[type]:
    # Only the core's own (a plugin's errors are its to document), and only those with a code
    # of their own: a bare base class is never what a route answers.
    found = [base] if base.__module__ == errors.__name__ and "code" in vars(base) else []
    for sub in base.__subclasses__():
        found += _subclasses(sub)
    return found


def client_events(document: dict[str, Any]) -> str:
    create = document["components"]["schemas"]["WebhookEndpointCreate"]
    names = create["properties"]["events"]["items"]["enum"]
    return (
        "Subscribable on a gateway with the built-in plugins: "
        + ", ".join(f"`{name}`" for name in names)
        + "."
    )


def routes(document: dict[str, Any]) -> str:
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    summary = table(
        ("route", "what", "API key"),
        [
            (f"`{method.upper()} {path}`", cell(op["summary"]), "yes" if op["security"] else "no")
            for path, method, op in operations
        ],
    )
    sections = ["## Routes", summary]
    tags: dict[str, list[str]] = {}
    for path, method, operation in operations:
        tags.setdefault(operation["tags"][0], []).append(_operation(path, method, operation))
    for tag, texts in tags.items():
        sections.append(f"### Routes: {tag}")
        sections.extend(texts)
    return "\n\n".join(sections)


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    auth = "Needs an API key." if operation["security"] else "No API key."
    parts = [f"#### `{method.upper()} {path}`", f"{operation['summary']}. {auth}"]
    if operation.get("description"):
        parts.append(operation["description"])
    if operation.get("parameters"):
        rows = [
            (
                f"`{p['name']}`",
                p["in"],
                type_of(p["schema"]),
                "yes" if p.get("required") else "no",
                cell(_notes(p["schema"], p.get("description", ""))),
            )
            for p in operation["parameters"]
        ]
        parts.append(table(("parameter", "in", "type", "required", "notes"), rows))
    body = operation.get("requestBody")
    if body:
        required = "required" if body.get("required") else "optional"
        parts.append(f"Body ({required}): {_content(body)}.")
    rows = [
        (status, cell(response["description"]), _content(response))
        for status, response in sorted(operation["responses"].items(), key=lambda i: int(i[0]))
    ]
    parts.append(table(("status", "meaning", "body"), rows))
    return "\n\n".join(parts)


def _content(holder: dict[str, Any]) -> str:
    shown = [
        type_of(content["schema"]) if "json" in media else f"`{media}`"
        for media, content in holder.get("content", {}).items()
    ]
    return ", ".join(shown) or "none"


def schemas(document: dict[str, Any]) -> str:
    sections = ["## Schemas"]
    for name, schema in document["components"]["schemas"].items():
        sections.append(f"### {name}")
        if schema.get("description"):
            sections.append(schema["description"])
        fields = list(_fields(schema))
        if fields:
            sections.append(table(("field", "type", "required", "notes"), fields))
        else:
            sections.append(f"Type: {type_of(schema)}.")
    return "\n\n".join(sections)


def _fields(schema: dict[str, Any], prefix: str = ""):
    """One row per property; an unnamed object's properties follow it, as `outer.inner`."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        yield (
            f"`{prefix}{name}`",
            type_of(prop),
            "yes" if name in required else "no",
            cell(_notes(prop, prop.get("description", ""))),
        )
        if "properties" in prop:
            yield from _fields(prop, f"{prefix}{name}.")


def type_of(schema: dict[str, Any]) -> str:
    """A schema as a short phrase, with named schemas linked to their section."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(_REF)
        return f"[{name}](#{anchor(name)})"
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(type_of(s) for s in schema.get("anyOf") or schema["oneOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kinds = schema.get("type", [])
    phrases = []
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        if kind == "array":
            phrases.append(f"array of {type_of(schema.get('items', {}))}")
        elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            phrases.append(f"object of {type_of(schema['additionalProperties'])}")
        else:
            phrases.append(kind)
    text = " or ".join(phrases) or "any"
    return f"{text} ({schema['format']})" if "format" in schema else text


def _notes(schema: dict[str, Any], description: str) -> str:
    bounds = [
        _range(schema.get(low), schema.get(high), unit)
        for low, high, unit in (
            ("minimum", "maximum", ""),
            ("minLength", "maxLength", " characters"),
            ("minItems", "maxItems", " items"),
        )
        if low in schema or high in schema
    ]
    if "default" in schema:
        bounds.append(f"default {json.dumps(schema['default'])}")
    return "; ".join(filter(None, (description.rstrip("."), ", ".join(bounds))))


def _range(low: int | None, high: int | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}{unit}"
    if high is not None:
        return f"at most {high}{unit}"
    return "not empty" if low == 1 and unit else f"at least {low}{unit}"

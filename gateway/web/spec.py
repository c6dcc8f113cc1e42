"""One source for routes: operations declare schemas that validate input and make the OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from ..errors import BadRequest, FieldProblem
from .jsonread import parse_json
from .textcheck import PLAIN_TEXT_PATTERN

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Schema(dict):
    """A JSON Schema with a name: the OpenAPI document shows it once, as a component, and
    refers to it wherever it is used (so generated clients get one ``Job`` class, not one per
    route). To everything else, a validator included, it is the plain schema."""

    __slots__ = ("name",)

    def __init__(self, name: str, schema: dict[str, Any]) -> None:
        super().__init__(schema)
        self.name = name


def record(
    name: str | None, properties: dict[str, Any], *, required: list[str] | None = None
) -> dict[str, Any]:
    """An object schema whose ``required`` properties (every one, unless given) must be there;
    named (a component, see :class:`Schema`) when ``name`` is given."""
    schema = {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }
    return schema if name is None else Schema(name, schema)


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null (a named schema stays one type, and a reference, this way)."""
    return {"anyOf": [schema, {"type": "null"}]}


def page_schema(item: Schema) -> Schema:
    """The list envelope of a paginated route: ``{"data": [...], "nextCursor": ...}``."""
    return Schema(
        f"{item.name}List",
        {
            "type": "object",
            "required": ["data", "nextCursor"],
            "properties": {
                "data": {"type": "array", "items": item},
                "nextCursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `?cursor=` for the next page; null on the last.",
                },
            },
        },
    )


def list_schema(item: Schema) -> Schema:
    """The envelope of a short list that comes whole: ``{"data": [...]}``."""
    return Schema(
        f"{item.name}List",
        {
            "type": "object",
            "required": ["data"],
            "properties": {"data": {"type": "array", "items": item}},
        },
    )


FIELD_PROBLEM = record(
    "FieldProblem",
    {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
)
PROBLEM = record(
    "Problem",
    {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": FIELD_PROBLEM},
    },
    required=["type", "title", "status", "detail"],
)

LIMIT_PARAM = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": "Page size.",
    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
}
CURSOR_PARAM = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "description": "The `nextCursor` of the previous page.",
    # Unpadded URL-safe base64, signed (see pagination): one of this shape that this server
    # did not give for the list is a 404, not a 400, as it is well-formed.
    "schema": {
        "type": "string",
        "minLength": 2,
        "maxLength": 400,
        "pattern": "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$",
    },
}


def path_param(name: str) -> dict[str, Any]:
    """An id in the path (``/api/jobs/{jobId}``)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "maxLength": 60, "pattern": PLAIN_TEXT_PATTERN},
    }


def id_string(max_length: int = 60) -> dict[str, Any]:
    """An id given in a body or a query filter: bounded, and no control characters."""
    return {"type": "string", "maxLength": max_length, "pattern": PLAIN_TEXT_PATTERN}


@dataclass(slots=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    responses: dict[int, dict[str, Any]]
    auth: bool = True
    tags: tuple[str, ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    request_body: dict[str, Any] | None = None
    description: str = ""

    def operation_id(self) -> str:
        return self.handler.__name__


_validators: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A compiled validator per schema object (compiling on every request costs more than it)."""
    cached = _validators.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _validators[id(schema)] = (schema, Draft202012Validator(schema))
    return cached[1]


def json_response(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }


class ApiSpec:
    """The operations the server answers, as aiohttp routes and as an OpenAPI 3.1 document."""

    def __init__(self, title: str, version: str) -> None:
        self.title = title
        self.version = version
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        responses: dict[int, dict[str, Any]],
        auth: bool = True,
        tags: tuple[str, ...] = (),
        parameters: tuple[dict[str, Any], ...] = (),
        request_body: dict[str, Any] | None = None,
        description: str = "",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(
                Operation(
                    method.upper(),
                    path,
                    handler,
                    summary,
                    dict(responses),
                    auth,
                    tags,
                    parameters,
                    request_body,
                    description,
                )
            )
            return handler

        return register

    def add(self, operation: Operation) -> None:
        self.operations.append(operation)

    def install(self, app: web.Application) -> None:
        for op in self.operations:
            if not op.auth:
                # The auth middleware lets these through (the OAuth callback carries no key).
                op.handler.__gateway_public__ = True  # type: ignore[attr-defined]
            app.router.add_route(op.method, op.path, op.handler, name=op.operation_id())

    def document(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            responses = {str(code): spec for code, spec in sorted(op.responses.items())}
            if op.auth:
                responses.setdefault("401", problem("Missing or invalid API key"))
                responses.setdefault(
                    "429",
                    problem("Too many failed authentications from this address (see Retry-After)"),
                )
            if op.parameters or op.request_body:
                responses.setdefault("400", problem("Malformed request"))
            if any(param is CURSOR_PARAM for param in op.parameters):
                responses.setdefault(
                    "404", problem("No such page (a cursor not given for this list)")
                )
            if op.request_body or op.method in ("POST", "PUT", "PATCH"):
                responses.setdefault("413", problem("Request body larger than the server takes"))
            responses.setdefault("405", problem("Method not allowed"))
            # Any request: a request line or header past the server's limit (web/protocol.py).
            responses.setdefault(
                "431", problem("Request line or a header larger than the server reads")
            )
            if op.auth:
                # Every authenticated route reads the database: when it is locked or
                # unreachable the answer is 503 with Retry-After, never a 500.
                responses.setdefault(
                    "503", problem("Database unavailable for now (see Retry-After)")
                )
            item: dict[str, Any] = {
                "operationId": op.operation_id(),
                "summary": op.summary,
                **({"description": op.description} if op.description else {}),
                "tags": list(op.tags),
                "responses": responses,
            }
            if op.parameters:
                item["parameters"] = list(op.parameters)
            if op.request_body:
                item["requestBody"] = op.request_body
            item["security"] = [{"apiKey": []}] if op.auth else []
            paths.setdefault(op.path, {})[op.method.lower()] = item
        schemas = _Components()
        paths = schemas.referenced(paths)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "paths": paths,
            "components": {
                "schemas": schemas.document(),
                "securitySchemes": {
                    "apiKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "A tenant API key from `gateway tenants create`.",
                    }
                },
            },
        }


class _Components:
    """The named schemas met while copying a document, each replaced by a reference."""

    def __init__(self) -> None:
        self._named: dict[str, Schema] = {}
        self._schemas: dict[str, Any] = {}

    def referenced(self, value: Any) -> Any:
        """A copy of ``value`` in which every named schema is a ``$ref``."""
        if isinstance(value, Schema):
            known = self._named.setdefault(value.name, value)
            if known is not value and dict(known) != dict(value):
                # Two shapes under one name: a client would get one class for both.
                raise ValueError(f"two different schemas are both named {value.name!r}")
            if value.name not in self._schemas:
                self._schemas[value.name] = None  # taken before its content is walked
                self._schemas[value.name] = self.referenced(dict(value))
            return {"$ref": f"#/components/schemas/{value.name}"}
        if isinstance(value, dict):
            return {key: self.referenced(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.referenced(item) for item in value]
        return value

    def document(self) -> dict[str, Any]:
        return dict(sorted(self._schemas.items()))


def query_params(request: web.Request, operation_params: tuple[dict[str, Any], ...]) -> dict:
    """Coerce and validate the query string against the operation's declared parameters.

    :raises BadRequest: listing every bad parameter.
    """
    values: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for param in operation_params:
        if param["in"] != "query":
            continue
        name, schema = param["name"], param["schema"]
        raw = request.query.get(name)
        if raw is None:
            if param.get("required"):
                problems.append(
                    FieldProblem(name, "required", f"query parameter {name} is required")
                )
            elif "default" in schema:
                values[name] = schema["default"]
            continue
        value: Any = raw
        if schema.get("type") == "integer":
            try:
                value = int(raw)
            except ValueError:
                problems.append(FieldProblem(name, "type", f"{name} must be a whole number"))
                continue
        elif schema.get("type") == "boolean":
            value = {"true": True, "1": True, "false": False, "0": False}.get(raw.lower())
            if value is None:
                problems.append(FieldProblem(name, "type", f"{name} must be true or false"))
                continue
        errors = sorted(validator_for(schema).iter_errors(value), key=str)
        if errors:
            problems.append(FieldProblem(name, "invalid", f"{name}: {errors[0].message}"))
            continue
        values[name] = value
    if problems:
        raise BadRequest("invalid query parameters", errors=problems)
    return values


async def json_body(request: web.Request, schema: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object, checked against ``schema``.

    :raises BadRequest: for a body that is not JSON, not an object, nested too deep, or breaks
        the schema, listing each field problem.
    :raises InvalidInput: for text that cannot be encoded as UTF-8 (see ``jsonread``).
    """
    if not request.body_exists:
        body: Any = {}
    elif request.content_type != "application/json":
        raise BadRequest("send a JSON body with Content-Type: application/json")
    else:
        body = parse_json(await request.read(), request.charset)
    return validated(body, schema)


def validated(body: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """``body``, a JSON object that satisfies ``schema``.

    :raises BadRequest: listing each field problem.
    """
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    problems = [
        FieldProblem(
            ".".join(str(p) for p in error.absolute_path) or _missing_field(error.message),
            str(error.validator),
            error.message,
        )
        for error in sorted(validator_for(schema).iter_errors(body), key=str)
    ]
    if problems:
        raise BadRequest("the body does not match the schema", errors=problems)
    return body


def _missing_field(message: str) -> str:
    # jsonschema reports a missing property on the parent: "'platform' is a required property".
    return message.split("'")[1] if message.count("'") >= 2 else "(body)"

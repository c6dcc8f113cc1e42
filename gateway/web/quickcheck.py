"""A fast "certainly valid" test of a JSON value against a simple JSON Schema, for hot routes.

The full validator (jsonschema) costs a hot route more than its database work. A route first
asks the quick check, compiled once from the same schema; only when it cannot vouch for the
body does the full validator run, which also words the errors. The quick check may be too
strict (it gives up on any keyword it does not know), never too lenient: a body it passes is
one jsonschema passes too (tests compare the two).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]
# Keywords that never make a value invalid (annotations); `format` only annotates by default.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "format", "deprecated", "$comment"}
)
_TYPES: dict[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "integer": lambda v: type(v) is int or (type(v) is float and v.is_integer()),
    "number": lambda v: type(v) in (int, float),
}


def _never(_: Any) -> bool:
    return False


def quick_check(schema: dict[str, Any]) -> Check:
    """A function that answers True only for values that satisfy ``schema``."""
    if not isinstance(schema, dict):
        return _never
    unknown = (
        set(schema)
        - _ANNOTATIONS
        - {
            "type",
            "properties",
            "required",
            "additionalProperties",
            "maxLength",
            "minLength",
            "maxItems",
            "minItems",
            "items",
            "pattern",
            "enum",
        }
    )
    if unknown:
        return _never
    checks: list[Check] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if any(name not in _TYPES for name in names):
            return _never
        tests = [_TYPES[name] for name in names]
        checks.append(tests[0] if len(tests) == 1 else lambda v: any(t(v) for t in tests))
    if "enum" in schema:
        allowed = schema["enum"]
        # Leave 1 == True == 1.0 and friends to jsonschema: only strings and None here.
        if not all(isinstance(a, str) or a is None for a in allowed):
            return _never
        checks.append(lambda v: (type(v) is str or v is None) and v in allowed)
    checks += _string_checks(schema) + _array_checks(schema) + _object_checks(schema)
    if _never in checks:
        return _never
    return _all(checks)


def _all(checks: list[Check]) -> Check:
    # Hot path: no generator per value for the common one- and two-check cases.
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    return lambda v: all(check(v) for check in checks)


def _string_checks(schema: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    if "maxLength" in schema:
        most = schema["maxLength"]
        checks.append(lambda v: type(v) is not str or len(v) <= most)
    if "minLength" in schema:
        least = schema["minLength"]
        checks.append(lambda v: type(v) is not str or len(v) >= least)
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        checks.append(lambda v: type(v) is not str or pattern.search(v) is not None)
    return checks


def _array_checks(schema: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    if "maxItems" in schema:
        most = schema["maxItems"]
        checks.append(lambda v: type(v) is not list or len(v) <= most)
    if "minItems" in schema:
        least = schema["minItems"]
        checks.append(lambda v: type(v) is not list or len(v) >= least)
    if "items" in schema:
        item = quick_check(schema["items"])
        if item is _never:
            return [_never]
        checks.append(lambda v: type(v) is not list or all(item(i) for i in v))
    return checks


def _object_checks(schema: dict[str, Any]) -> list[Check]:
    properties = schema.get("properties", {})
    compiled = {name: quick_check(sub) for name, sub in properties.items()}
    extra = schema.get("additionalProperties", True)
    if _never in compiled.values() or extra not in (True, False):
        return [_never]
    required = tuple(schema.get("required", ()))
    if not compiled and not required and extra is True:
        return []
    closed = extra is False

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return True
        for key, item in v.items():
            sub = compiled.get(key)
            if sub is None:
                if closed:
                    return False
            elif not sub(item):
                return False
        return all(name in v for name in required)

    return [check]

"""The quick body check never passes what the full JSON Schema validator refuses."""

from __future__ import annotations

import itertools
import random

from jsonschema import Draft202012Validator

from gateway.web.quickcheck import quick_check
from gateway.web.routes.publish import PUBLISH_BODY

VALID = {
    "connectionId": "conn_1",
    "accountId": "acct_1",
    "title": "Hi",
    "body": "Hello",
    "mediaUrls": ["https://cdn.example.com/a.jpg"],
    "link": "https://example.com",
    "scheduledAt": "2026-12-01T09:00:00Z",
    "options": {"examplesocial": {"x": 1}},
}
ODD_VALUES = [
    None,
    True,
    0,
    1.5,
    "",
    "x",
    "x" * 61,
    "ftp://x",
    "https://x",
    [],
    ["https://x"],
    ["ftp://x"],
    [1],
    ["https://x"] * 51,
    {},
    {"a": 1},
]


def _variants():
    yield VALID
    yield {"connectionId": "c", "accountId": "a"}
    for field, odd in itertools.product(VALID, ODD_VALUES):
        yield {**VALID, field: odd}
    for field in VALID:
        yield {k: v for k, v in VALID.items() if k != field}
    yield {**VALID, "unexpected": 1}
    yield {**VALID, "body": "x" * 100_000}
    yield {**VALID, "body": "x" * 100_001}
    yield {**VALID, "title": "é" * 1000}
    yield {**VALID, "mediaUrls": ["https://x"] * 50}
    yield {**VALID, "mediaUrls": ["https://" + "x" * 1992]}
    yield {**VALID, "mediaUrls": ["https://" + "x" * 1993]}
    yield [VALID]
    yield "body"
    rng = random.Random(4)
    for _ in range(300):
        chosen = rng.sample(list(VALID), rng.randint(0, len(VALID)))
        yield {k: rng.choice([VALID[k], *ODD_VALUES]) for k in chosen}


def test_the_quick_check_is_never_more_lenient_than_jsonschema():
    quick = quick_check(PUBLISH_BODY)
    full = Draft202012Validator(PUBLISH_BODY)
    passed = 0
    for body in _variants():
        if quick(body):
            assert full.is_valid(body), body
            passed += 1
    assert passed > 20  # it does vouch for the plainly valid ones


def test_the_quick_check_vouches_for_ordinary_requests():
    quick = quick_check(PUBLISH_BODY)
    assert quick(VALID)
    assert quick({"connectionId": "conn_1", "accountId": "acct_1", "body": "Hello"})


def test_unknown_keywords_make_it_defer_to_the_full_validator():
    assert not quick_check({"type": "string", "format": "email", "minContains": 1})("a")
    assert not quick_check({"type": "object", "patternProperties": {"x": {}}})({})
    assert not quick_check({"type": "object", "additionalProperties": {"type": "string"}})({})
    assert not quick_check({"enum": [1, 2]})(1)
    assert quick_check({"type": "string", "format": "email"})("not an email")  # annotation

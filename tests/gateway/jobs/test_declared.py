"""What a connector declares (post kinds, limits per account kind, options), enforced at submit."""

from __future__ import annotations

from types import SimpleNamespace

from gateway_example_plugin import ExampleConnector

from gateway import (
    AccountRef,
    Capabilities,
    Connector,
    Limits,
    LimitsByKind,
    PostKind,
    PublishRequest,
)
from gateway.jobs.declared import refusals

from .test_pipeline import account_of, jobs_count, queue

EXAMPLE_KEY = "ex-" + "c" * 32
CDN = "https://cdn.example.org"


def problems(connector: type[Connector], account_kind: str, **fields) -> set[tuple[str, str]]:
    account = AccountRef(id="acct_1", kind=account_kind, external_id="1", name="One")
    found = refusals(
        connector(SimpleNamespace(http=None, log=None)), PublishRequest(**fields), account
    )
    return {(p.field, p.code) for p in found}


async def test_options_are_the_platforms_own_and_match_its_schema(live):
    """Options under another key, of the wrong type, or with a key the platform does not
    declare are refused, each naming its field; nothing is queued."""
    connection_id, account_id = await account_of(live)
    # The starting contract's example keyed them by "instagram": never silently dropped.
    status, problem = await queue(
        live, connection_id, account_id, options={"instagram": {"mediaType": "REELS"}}
    )
    assert status == 422, problem
    assert problem["type"] == "urn:gateway:problem:invalid_input"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("options.instagram", "not_this_platform")
    ]
    assert "options.examplesocial" in problem["errors"][0]["message"]
    # Example Social declares no options: any key under its name is unknown.
    status, problem = await queue(
        live, connection_id, account_id, options={"examplesocial": {"colour": "red"}}
    )
    assert status == 422, problem
    assert problem["type"] == "urn:gateway:problem:unprocessable"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("options.examplesocial.colour", "unknown")
    ]
    status, problem = await queue(
        live, connection_id, account_id, options={"examplesocial": "loud"}
    )
    assert status == 422, problem
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("options.examplesocial", "type")
    ]
    assert await jobs_count(live) == 0
    status, accepted = await queue(live, connection_id, account_id, options={"examplesocial": {}})
    assert status == 202, accepted


async def test_the_declared_post_kinds_and_old_form_limits_are_enforced(live):
    """The example platform declares text and image posts, and one `Limits` for every account
    kind (the form before limits per account kind): both are enforced before anything is
    queued, though its connector has no check of its own."""
    status, connection = await live.api(
        "POST", "/api/connections", json={"platform": "example", "apiKey": EXAMPLE_KEY}
    )
    assert status == 201, connection
    _, accounts = await live.api("GET", f"/api/connections/{connection['id']}/accounts")
    account_id = accounts["data"][0]["id"]
    for fields, field in (
        ({"link": "https://example.org/a"}, "link"),
        ({"mediaUrls": [f"{CDN}/clip.mp4"]}, "mediaUrls"),
    ):
        status, problem = await queue(live, connection["id"], account_id, **fields)
        assert status == 422, problem
        assert problem["type"] == "urn:gateway:problem:unprocessable"
        [error] = problem["errors"]
        assert (error["field"], error["code"]) == (field, "unsupported_post_kind")
        assert "text, image" in error["message"]
    status, problem = await queue(live, connection["id"], account_id, body="x" * 281)
    assert status == 422, problem
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("body", "too_long")]
    assert await jobs_count(live) == 0
    for fields in ({"body": "x" * 280}, {"mediaUrls": [f"{CDN}/a.jpg"]}):
        status, accepted = await queue(live, connection["id"], account_id, **fields)
        assert status == 202, accepted


def test_the_old_form_applies_to_every_account_kind():
    assert ExampleConnector.limits_for("example_page") is ExampleConnector.limits
    described = ExampleConnector.describe("1.0")["limits"]
    assert described["default"]["captionLength"] == 280
    assert described["byAccountKind"] == {"example_page": described["default"]}


class Shop(Connector):
    """A platform with a title of its own, limits per account kind and a loose options schema."""

    platform = "shop"
    capabilities = Capabilities(
        post_kinds={
            "store": (PostKind.TEXT, PostKind.IMAGE),
            "newsletter": (PostKind.EMAIL_CAMPAIGN,),
        }
    )
    limits = LimitsByKind(
        {"store": Limits(title_length=10, caption_length=20, media_types=("image/png",))},
        default=Limits(caption_length=5),
    )
    options_schema = {
        "properties": {"colour": {"enum": ["red", "blue"]}},
        "required": ["colour"],
        "additionalProperties": {"type": "string"},
    }


def test_limits_per_account_kind_and_the_caption_with_a_title_of_its_own():
    ok = {"options": {"colour": "red"}}
    # The title is its own field here: only the body counts as the caption.
    assert problems(Shop, "store", title="t" * 10, body="b" * 20, **ok) == set()
    assert problems(Shop, "store", title="t" * 11, body="b" * 21, **ok) == {
        ("title", "too_long"),
        ("body", "too_long"),
    }
    assert problems(Shop, "store", media_urls=(f"{CDN}/a.jpg",), **ok) == {
        ("mediaUrls.0", "unsupported_format")
    }
    # A kind it declares post kinds for but no limits of its own gets the default.
    assert Shop.limits_for("newsletter").caption_length == 5
    # Email campaigns cannot be told by shape: the default post_kind leaves them unchecked.
    assert problems(Shop, "newsletter", body="hi", **ok) == set()
    assert problems(Shop, "store", link="https://e.org", **ok) == {
        ("link", "unsupported_post_kind")
    }
    assert problems(Shop, "forum", body="hi", **ok) == {("accountId", "unsupported")}


def test_an_options_schema_may_allow_more_keys_and_require_some():
    assert problems(Shop, "store", body="hi", options={"colour": "red", "note": "x"}) == set()
    assert problems(Shop, "store", body="hi", options={"colour": "red", "note": 1}) == {
        ("options.shop.note", "type")
    }
    assert problems(Shop, "store", body="hi", options={}) == {("options.shop.colour", "required")}
    assert problems(Shop, "store", body="hi", options={"colour": "green"}) == {
        ("options.shop.colour", "enum")
    }
    assert Shop.describe("1")["options"]["additionalProperties"] == {"type": "string"}


def test_options_that_are_no_object_are_refused_even_when_falsy():
    for value in (False, 0, "", []):
        assert problems(Shop, "store", body="hi", options=value) == {("options.shop", "type")}
    assert problems(ExampleConnector, "example_page", body="hi", options=False) == {
        ("options.example", "type")
    }

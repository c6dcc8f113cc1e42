"""Example Social's posts API: create, list by client_reference, delete, validation, ownership."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from .flows import ME, Social, page_posts, post_path

PAGE = "page-user-1-1"


async def create(social: Social, token: str, body: Any, page: str = PAGE):
    return await social.api(page_posts(page), token, "POST", json=body)


async def state_posts(social: Social) -> list[dict[str, Any]]:
    return (await social.control("GET", "state")).body["posts"]


async def test_a_post_is_created_listed_by_reference_and_deleted(social: Social) -> None:
    token = (await social.connect())["access_token"]
    body = {
        "message": "Hello",
        "link": "https://example.org/a?b=c",
        "media_urls": ["https://cdn.example.org/1.jpg"],
        "client_reference": "job_1",
    }
    created = await create(social, token, body)
    assert created.status == 201, created.body
    assert set(created.body) == {"id", "url", "status", "created_time"}
    assert created.body["status"] == "ready"
    assert created.body["id"] == "post_1"
    assert created.body["url"] == f"https://www.examplesocial.test/{PAGE}/posts/1"
    assert datetime.fromisoformat(created.body["created_time"]).tzinfo is not None
    other = await create(social, token, {"message": "Second", "client_reference": "job_2"})
    assert (other.status, other.body["id"]) == (201, "post_2")

    listed = await social.api(page_posts(PAGE), token, params={"client_reference": "job_1"})
    assert listed.status == 200
    assert listed.body == {
        "data": [
            {
                **created.body,
                "message": "Hello",
                "link": "https://example.org/a?b=c",
                "media_urls": ["https://cdn.example.org/1.jpg"],
                "client_reference": "job_1",
            }
        ]
    }
    everything = await social.api(page_posts(PAGE), token)
    assert [p["id"] for p in everything.body["data"]] == ["post_1", "post_2"]
    unknown = await social.api(page_posts(PAGE), token, params={"client_reference": "job_9"})
    assert (unknown.status, unknown.body) == (200, {"data": []})
    # Another page of the same user has none of them.
    other_page = await social.api(page_posts("page-user-1-2"), token)
    assert other_page.body == {"data": []}

    stored = (await state_posts(social))[0]
    assert {k: stored[k] for k in ("id", "page", "user", "clientReference", "deleted")} == {
        "id": "post_1",
        "page": PAGE,
        "user": "user-1",
        "clientReference": "job_1",
        "deleted": False,
    }
    assert (stored["message"], stored["link"], stored["mediaUrls"]) == (
        "Hello",
        "https://example.org/a?b=c",
        ["https://cdn.example.org/1.jpg"],
    )

    deleted = await social.api(post_path("post_1"), token, "DELETE")
    assert (deleted.status, deleted.body) == (200, {"deleted": True})
    listed = await social.api(page_posts(PAGE), token, params={"client_reference": "job_1"})
    assert listed.body == {"data": []}
    again = await social.api(post_path("post_1"), token, "DELETE")
    assert again.status == 404
    assert again.body["error"]["code"] == "not_found"
    never = await social.api(post_path("post_77"), token, "DELETE")
    assert (never.status, never.body["error"]["code"]) == (404, "not_found")
    assert [(p["id"], p["deleted"]) for p in await state_posts(social)] == [
        ("post_1", True),
        ("post_2", False),
    ]


async def test_media_alone_makes_a_post_and_the_limits_are_inclusive(social: Social) -> None:
    token = (await social.connect())["access_token"]
    media = [f"https://cdn.example.org/{n}.jpg" for n in range(4)]
    assert (await create(social, token, {"media_urls": media})).status == 201
    assert (await create(social, token, {"message": "x" * 500})).status == 201
    assert (
        await create(social, token, {"message": "m", "client_reference": "r" * 64})
    ).status == 201
    assert len(await state_posts(social)) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "x" * 501}, "message"),
        (
            {"message": "hi", "media_urls": [f"https://cdn.test/{n}.jpg" for n in range(5)]},
            "media_urls",
        ),
        ({"message": "hi", "link": "ftp://example.org/file"}, "link"),
        ({"message": "hi", "link": "example.org/no-scheme"}, "link"),
        ({}, "message"),
        ({"message": "   "}, "message"),
        ({"link": "https://example.org"}, "message"),
        ({"message": "hi", "media_urls": ["file:///etc/passwd"]}, "media_urls"),
        ({"message": "hi", "client_reference": "r" * 65}, "client_reference"),
        ({"message": 5}, "message"),
        ({"message": "hi", "media": ["https://cdn.test/1.jpg"]}, "media"),
    ],
    ids=[
        "long-message",
        "five-media",
        "ftp-link",
        "relative-link",
        "empty",
        "blank-message",
        "link-only",
        "file-media",
        "long-reference",
        "number-message",
        "unknown-field",
    ],
)
async def test_an_invalid_post_is_400_naming_the_field(
    social: Social, body: dict[str, Any], field: str
) -> None:
    token = (await social.connect())["access_token"]
    reply = await create(social, token, body)
    assert reply.status == 400, reply.body
    error = reply.body["error"]
    assert (error["code"], error["field"]) == ("invalid_parameter", field)
    assert error["message"]
    assert await state_posts(social) == []


async def test_a_body_that_is_not_json_is_400(social: Social) -> None:
    token = (await social.connect())["access_token"]
    form = await social.api(page_posts(PAGE), token, "POST", data={"message": "hi"})
    assert (form.status, form.body["error"]["code"]) == (400, "invalid_request")
    broken = await social.call(
        "POST",
        page_posts(PAGE),
        data=b"{not json",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert (broken.status, broken.body["error"]["code"]) == (400, "invalid_request")
    listed = await create(social, token, ["a", "list"])
    assert (listed.status, listed.body["error"]["code"]) == (400, "invalid_parameter")
    assert await state_posts(social) == []


async def test_only_the_pages_owner_posts_lists_and_deletes(social: Social) -> None:
    alice = (await social.connect(login_as="alice"))["access_token"]
    bob = (await social.connect(login_as="bob"))["access_token"]
    for page in ("page-alice-1", "page-nobody-1"):
        refused = await create(social, bob, {"message": "not mine"}, page=page)
        assert refused.status == 404, page
        assert refused.body["error"]["code"] == "not_found"
        listed = await social.api(page_posts(page), bob)
        assert (listed.status, listed.body["error"]["code"]) == (404, "not_found")
    assert await state_posts(social) == []

    post = (await create(social, alice, {"message": "mine"}, page="page-alice-1")).body
    other = await social.api(post_path(post["id"]), bob, "DELETE")
    # It exists, so not a 404 a client would take for "already deleted".
    assert (other.status, other.body["error"]["code"]) == (403, "forbidden")
    assert [p["deleted"] for p in await state_posts(social)] == [False]
    assert (await social.api(post_path(post["id"]), alice, "DELETE")).status == 200


async def test_the_posts_api_needs_the_posts_write_scope(social: Social) -> None:
    owner = (await social.connect())["access_token"]
    post = (await create(social, owner, {"message": "hi", "client_reference": "r1"})).body
    token = (await social.connect(granted_scope=["profile", "pages.read"]))["access_token"]
    for method, path, kwargs in (
        ("POST", page_posts(PAGE), {"json": {"message": "hi"}}),
        ("GET", page_posts(PAGE), {"params": {"client_reference": "r1"}}),
        ("DELETE", post_path(post["id"]), {}),
    ):
        reply = await social.api(path, token, method, **kwargs)
        assert reply.status == 403, method
        assert reply.body["error"] == {
            "code": "insufficient_scope",
            "message": "the access token lacks the posts.write scope",
            "scope": "posts.write",
        }
        assert 'scope="posts.write"' in reply.headers["WWW-Authenticate"]
    assert [p["deleted"] for p in await state_posts(social)] == [False]
    missing = await social.api(page_posts(PAGE), None, "POST", json={"message": "hi"})
    assert (missing.status, missing.body["error"]["code"]) == (401, "invalid_token")


async def test_posts_count_against_the_tokens_rate_limit(social: Social) -> None:
    token = (await social.connect())["access_token"]
    for n in range(99):
        assert (await social.api(ME, token)).status == 200, n
    assert (await create(social, token, {"message": "the 100th call"})).status == 201
    limited = await create(social, token, {"message": "the 101st call"})
    assert limited.status == 429
    assert limited.body["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert [p["message"] for p in await state_posts(social)] == ["the 100th call"]


async def test_reset_forgets_the_posts(social: Social) -> None:
    token = (await social.connect())["access_token"]
    assert (await create(social, token, {"message": "before"})).status == 201
    assert (await social.control("POST", "reset")).status == 200
    assert await state_posts(social) == []
    token = (await social.connect())["access_token"]
    again = await create(social, token, {"message": "after"})
    assert again.body["id"] == "post_1"

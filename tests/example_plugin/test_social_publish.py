"""Publishing with the Example Social connector: check, publish, reconcile, delete, failures.

The connector runs in a real gateway in sandbox mode; the posts land in the mounted sandbox.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gateway_example_plugin.social_connector import ExampleSocialConnector

from gateway import (
    AccountRef,
    FieldProblem,
    InvalidRequest,
    NeedsReauth,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    PublishRequest,
    PublishResult,
    Transient,
)
from gateway.jobs.declared import refusals

from .conftest import StartGateway
from .running import Running, credentials

PAGE_KIND = "examplesocial_page"
POSTS_PATH = "/api.examplesocial.test/v1/pages/page-user-1-1/posts"
MEDIA = tuple(f"https://cdn.example.org/{n}.jpg" for n in range(5))


def page(external_id: str = "page-user-1-1", kind: str = PAGE_KIND) -> AccountRef:
    return AccountRef(id="acc_test", kind=kind, external_id=external_id, name="Page")


async def signed_in(running: Running, **form: Any):
    tokens = await running.social.connect(**form)
    return credentials(tokens["access_token"])


def posts_sent(journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in journal if r["method"] == "POST" and r["path"] == POSTS_PATH]


# -- check -------------------------------------------------------------------------------------

CLEAN = {
    "text": PublishRequest(body="Hello"),
    "title-only": PublishRequest(title="Hello"),
    "title-and-body-of-500": PublishRequest(title="t" * 249, body="b" * 249),
    "link": PublishRequest(body="Read this", link="https://example.org/article"),
    "media-only": PublishRequest(media_urls=MEDIA[:1]),
    "four-media": PublishRequest(body="Album", media_urls=MEDIA[:4]),
}


@pytest.mark.parametrize("request_", CLEAN.values(), ids=CLEAN.keys())
def test_check_passes_a_post_the_platform_takes(running: Running, request_: PublishRequest):
    assert refusals(running.connector, request_, page()) == []


# Each request has exactly one problem, on one field.
FAULTY = {
    "empty": (PublishRequest(), "body", "required"),
    "blank": (PublishRequest(title=" ", body="\n"), "body", "required"),
    "link-only": (PublishRequest(link="https://example.org"), "body", "required"),
    "title-and-body-of-501": (PublishRequest(title="t" * 250, body="b" * 249), "body", "too_long"),
    "body-of-501": (PublishRequest(body="b" * 501), "body", "too_long"),
    "five-media": (PublishRequest(body="Album", media_urls=MEDIA), "mediaUrls", "too_many"),
    "ftp-link": (PublishRequest(body="x", link="ftp://example.org/f"), "link", "invalid"),
    "bare-link": (PublishRequest(body="x", link="example.org"), "link", "invalid"),
}


@pytest.mark.parametrize(("request_", "field", "code"), FAULTY.values(), ids=FAULTY.keys())
def test_check_names_the_one_field_to_fix(
    running: Running, request_: PublishRequest, field: str, code: str
):
    problems = refusals(running.connector, request_, page())
    assert [(p.field, p.code) for p in problems] == [(field, code)]
    assert all(isinstance(p, FieldProblem) and p.message for p in problems)


def test_check_says_the_length_limit_and_the_account_kind(running: Running):
    """The declared limits (enforced by the core) and the connector's check, as submit asks."""
    (too_long,) = refusals(
        running.connector, PublishRequest(title="t" * 300, body="b" * 300), page()
    )
    assert "500" in too_long.message and "602" in too_long.message
    problems = refusals(
        running.connector, PublishRequest(body="hi"), page(kind="examplesocial_group")
    )
    assert [(p.field, p.code) for p in problems] == [("accountId", "unsupported")]
    assert PAGE_KIND in problems[0].message
    # Problems on several fields are all reported at once: the declared limits' and the check's.
    everything = PublishRequest(link="mailto:a@b.test", media_urls=MEDIA)
    fields = [p.field for p in refusals(running.connector, everything, page())]
    assert sorted(fields) == ["link", "mediaUrls"]


async def test_the_platform_agrees_with_check(running: Running):
    """What check passes, the sandbox takes; what it refuses, the sandbox refuses too."""
    creds = await signed_in(running)
    for n, request in enumerate(CLEAN.values()):
        result = await running.connector.publish(
            request, page(), creds, idempotency_key=f"job_clean_{n}"
        )
        assert result.remote_id.startswith("post_")
    for name, (request, _, _) in FAULTY.items():
        with pytest.raises(InvalidRequest) as caught:
            await running.connector.publish(request, page(), creds, idempotency_key=f"job_{name}")
        assert caught.value.platform_code == "invalid_parameter", name
        assert caught.value.http_status == 400
    assert len((await running.state())["posts"]) == len(CLEAN)


# -- publish, find_published, delete -----------------------------------------------------------


async def test_publish_sends_the_post_and_find_published_finds_it_by_key(running: Running):
    creds = await signed_in(running)
    request = PublishRequest(
        title="Launch",
        body="We are live.",
        link="https://example.org/launch",
        media_urls=MEDIA[:2],
        options={"ignored": True},
    )
    result = await running.connector.publish(request, page(), creds, idempotency_key="job_abc")
    assert result == PublishResult(
        remote_id="post_1", url="https://www.examplesocial.test/page-user-1-1/posts/1"
    )
    (stored,) = (await running.state())["posts"]
    assert stored["message"] == "Launch\n\nWe are live."
    assert (stored["link"], stored["mediaUrls"]) == ("https://example.org/launch", list(MEDIA[:2]))
    assert (stored["clientReference"], stored["page"], stored["user"]) == (
        "job_abc",
        "page-user-1-1",
        "user-1",
    )
    (sent,) = posts_sent(await running.journal())
    assert sent["body"]["client_reference"] == "job_abc"
    assert sent["headers"]["authorization"].startswith("Bearer sha256:")

    found = await running.connector.find_published(
        request, page(), creds, idempotency_key="job_abc"
    )
    assert found == result
    lookups = [r for r in await running.journal() if r["method"] == "GET"]
    assert lookups[-1]["query"] == {"client_reference": "job_abc"}


async def test_find_published_is_none_for_a_key_never_sent(running: Running):
    creds = await signed_in(running)
    await running.connector.publish(
        PublishRequest(body="one"), page(), creds, idempotency_key="job_sent"
    )
    found = await running.connector.find_published(
        PublishRequest(body="one"), page(), creds, idempotency_key="job_never"
    )
    assert found is None


async def test_a_media_only_post_sends_no_message(running: Running):
    creds = await signed_in(running)
    request = PublishRequest(media_urls=MEDIA[:1])
    await running.connector.publish(request, page(), creds, idempotency_key="job_m")
    (sent,) = posts_sent(await running.journal())
    assert "message" not in sent["body"] and "link" not in sent["body"]
    assert sent["body"]["media_urls"] == [MEDIA[0]]


async def test_delete_then_delete_again_is_not_found(running: Running):
    creds = await signed_in(running)
    result = await running.connector.publish(
        PublishRequest(body="short-lived"), page(), creds, idempotency_key="job_del"
    )
    await running.connector.delete(result.remote_id, page(), creds)
    assert [p["deleted"] for p in (await running.state())["posts"]] == [True]
    with pytest.raises(NotFound) as caught:
        await running.connector.delete(result.remote_id, page(), creds)
    assert (caught.value.platform_code, caught.value.http_status) == ("not_found", 404)
    # A deleted post is not found by its key any more either.
    found = await running.connector.find_published(
        PublishRequest(body="short-lived"), page(), creds, idempotency_key="job_del"
    )
    assert found is None


async def test_deleting_another_users_post_is_permission_denied_not_done(running: Running):
    alice = await signed_in(running, login_as="alice")
    bob = await signed_in(running, login_as="bob")
    result = await running.connector.publish(
        PublishRequest(body="Alice's"), page("page-alice-1"), alice, idempotency_key="job_a"
    )
    with pytest.raises(PermissionDenied):
        await running.connector.delete(result.remote_id, page("page-bob-1"), bob)
    assert [p["deleted"] for p in (await running.state())["posts"]] == [False]


async def test_publishing_needs_the_scope_the_page_and_a_live_token(running: Running):
    request = PublishRequest(body="hi")
    narrow = await signed_in(running, granted_scope=["profile", "pages.read"])
    with pytest.raises(PermissionDenied) as denied:
        await running.connector.publish(request, page(), narrow, idempotency_key="job_1")
    assert denied.value.missing_scopes == ["posts.write"]
    creds = await signed_in(running)
    with pytest.raises(NotFound):
        await running.connector.publish(
            request, page("page-someone-1"), creds, idempotency_key="job_2"
        )
    await running.social.revoke(creds.access_token.reveal())
    with pytest.raises(NeedsReauth):
        await running.connector.publish(request, page(), creds, idempotency_key="job_3")
    assert (await running.state())["posts"] == []


# -- failures on the wire ----------------------------------------------------------------------


async def test_a_503_on_the_post_is_transient_and_not_retried(start_gateway: StartGateway):
    # Three attempts allowed: the client would retry an idempotent call and succeed.
    running = await start_gateway(max_attempts=3)
    creds = await signed_in(running)
    await running.fault(method="POST", path=POSTS_PATH, status=503)
    with pytest.raises(Transient) as caught:
        await running.connector.publish(
            PublishRequest(body="hi"), page(), creds, idempotency_key="job_503"
        )
    assert (caught.value.platform_code, caught.value.http_status) == ("server_error", 503)
    assert [r["status"] for r in posts_sent(await running.journal())] == [503]
    assert (await running.state())["posts"] == []


async def test_a_timeout_on_the_post_is_outcome_unknown_then_reconciled(
    start_gateway: StartGateway,
):
    running = await start_gateway(total_timeout_seconds=0.5, max_attempts=3)
    assert isinstance(running.connector, ExampleSocialConnector)
    creds = await signed_in(running)
    # The platform takes 1.5 s and then does create the post: the client gave up at 0.5 s.
    await running.fault(method="POST", path=POSTS_PATH, delayMs=1500)
    request = PublishRequest(body="did it go out?")
    with pytest.raises(OutcomeUnknown):
        await running.connector.publish(request, page(), creds, idempotency_key="job_slow")
    assert len(posts_sent(await running.journal())) == 1  # never replayed

    for _ in range(100):  # wait for the platform to finish the request it did receive
        statuses = [r["status"] for r in posts_sent(await running.journal())]
        if statuses != [None]:
            break
        await asyncio.sleep(0.05)
    assert statuses == [201]
    found = await running.connector.find_published(
        request, page(), creds, idempotency_key="job_slow"
    )
    (stored,) = (await running.state())["posts"]
    assert found == PublishResult(remote_id=stored["id"], url=stored["url"])

"""Injected faults: status, body, headers, delay, count, path glob and method filter."""

from __future__ import annotations

import asyncio
import time

from .flows import ME, POSTS, Served, bearer, create_post, login, me


async def arm(served: Served, **fault: object) -> dict:
    status, answer = await served.control("POST", "faults", fault)
    assert status == 201, answer
    return answer


async def test_a_fault_answers_its_status_body_and_headers_once(served: Served) -> None:
    token = (await login(served))["access_token"]
    await arm(
        served,
        path=ME,
        status=503,
        body={"error": {"code": "down"}},
        headers={"Retry-After": "7", "X-Trace": "abc"},
    )
    faulted = await me(served, token)
    assert faulted.status == 503
    assert await faulted.json() == {"error": {"code": "down"}}
    assert faulted.headers["Retry-After"] == "7"
    assert faulted.headers["X-Trace"] == "abc"
    assert faulted.headers["Content-Type"].startswith("application/json")
    # count defaults to 1: the next request gets its normal answer.
    normal = await me(served, token)
    assert normal.status == 200
    assert "X-Trace" not in normal.headers


async def test_a_faulted_request_never_reaches_the_platform(served: Served) -> None:
    token = (await login(served))["access_token"]
    await arm(served, path=POSTS, status=500)
    response = await create_post(served, token)
    assert response.status == 500
    assert served.sandbox.posts == []


async def test_string_body_is_sent_as_text_and_no_body_as_the_platform_error(
    served: Served,
) -> None:
    await arm(served, path="/api.example.test/*", status=502, body="<html>Bad gateway</html>")
    await arm(served, path="/api.example.test/*", status=500)
    text = await served.request("GET", ME)
    assert text.status == 502
    assert await text.text() == "<html>Bad gateway</html>"
    assert text.headers["Content-Type"].startswith("text/plain")
    default = await served.request("GET", ME)
    assert default.status == 500
    assert await default.json() == {"error": {"message": "sandbox fault: HTTP 500", "status": 500}}


async def test_count_glob_and_method_choose_the_requests(served: Served) -> None:
    token = (await login(served))["access_token"]
    await arm(served, method="post", path="/api.example.test/v1/post*", status=429, count=2)
    # Another path and another method on a matching path are left alone.
    assert (await me(served, token)).status == 200
    assert (await served.request("GET", POSTS, headers=bearer(token))).status == 405
    assert (await create_post(served, token)).status == 429
    assert (await create_post(served, token)).status == 429
    assert (await create_post(served, token)).status == 201


async def test_delay_without_status_gives_the_normal_answer_late(served: Served) -> None:
    token = (await login(served))["access_token"]
    await arm(served, path=POSTS, delayMs=300)
    started = time.monotonic()
    response = await create_post(served, token)
    elapsed = time.monotonic() - started
    assert response.status == 201
    assert elapsed >= 0.3
    assert len(served.sandbox.posts) == 1
    started = time.monotonic()
    assert (await create_post(served, token)).status == 201
    assert time.monotonic() - started < 0.3
    _, journal = await served.control("GET", "journal")
    posts = [e for e in journal["requests"] if e["path"] == POSTS]
    assert [(e["status"], e["faulted"]) for e in posts] == [(201, True), (201, False)]


async def test_a_delayed_request_is_journaled_while_in_flight(served: Served) -> None:
    token = (await login(served))["access_token"]
    await arm(served, path=POSTS, delayMs=500)
    in_flight = asyncio.create_task(create_post(served, token))
    for _ in range(50):
        _, journal = await served.control("GET", "journal", None)
        if journal["requests"][-1]["path"] == POSTS:
            break
        await asyncio.sleep(0.01)
    # Arrived, not answered: what a test of an unknown outcome (client timeout) looks at.
    assert journal["requests"][-1]["status"] is None
    assert (await in_flight).status == 201
    _, journal = await served.control("GET", "journal")
    assert journal["requests"][-1]["status"] == 201


async def test_delay_then_status(served: Served) -> None:
    await arm(served, path=ME, delayMs=200, status=504)
    started = time.monotonic()
    response = await served.request("GET", ME)
    assert response.status == 504
    assert time.monotonic() - started >= 0.2


async def test_headers_without_status_are_added_to_the_normal_answer(served: Served) -> None:
    token = (await login(served))["access_token"]
    await arm(served, path=ME, headers={"X-App-Usage": '{"call_count": 95}'})
    response = await me(served, token)
    assert response.status == 200
    assert response.headers["X-App-Usage"] == '{"call_count": 95}'


async def test_delete_clears_every_fault(served: Served) -> None:
    await arm(served, path=ME, status=500, count=5)
    await arm(served, status=503)
    status, answer = await served.control("DELETE", "faults")
    assert (status, answer) == (200, {"cleared": 2})
    assert (await served.request("GET", ME)).status == 401  # the normal answer: no token


async def test_control_requests_are_never_faulted(served: Served) -> None:
    await arm(served, path="*", status=500)
    status, _ = await served.control("GET", "state")
    assert status == 200
    # The fault is still armed for the next platform request.
    assert (await served.request("GET", ME)).status == 500

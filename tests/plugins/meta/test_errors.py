"""The Graph error table: every code of the reference onto the gateway's categories."""

from __future__ import annotations

import pytest

from gateway import (
    InvalidRequest,
    NeedsReauth,
    NotFound,
    PermissionDenied,
    RateLimited,
    Transient,
)
from plugins.meta.errors import graph_error


def body(code, subcode=None, *, transient=None, message="m"):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "x"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    return {"error": error}


CASES = [
    # (code, subcode, category) — HTTP 400 throughout: the code decides, not the status.
    (1, None, Transient),
    (2, None, Transient),
    (3, None, PermissionDenied),
    (4, None, RateLimited),
    (10, None, PermissionDenied),
    (17, None, RateLimited),
    (17, 2446079, RateLimited),
    (32, None, RateLimited),
    (100, None, InvalidRequest),
    (100, 33, NotFound),
    (102, None, NeedsReauth),
    (190, None, NeedsReauth),
    (190, 458, NeedsReauth),
    (190, 459, NeedsReauth),
    (190, 460, NeedsReauth),
    (190, 463, NeedsReauth),
    (190, 464, NeedsReauth),
    (190, 467, NeedsReauth),
    (190, 492, NeedsReauth),
    (200, None, PermissionDenied),
    (299, None, PermissionDenied),
    (341, None, RateLimited),
    (368, None, RateLimited),
    (506, None, InvalidRequest),
    (613, None, RateLimited),
    (613, 1996, RateLimited),
    (1609005, None, InvalidRequest),
    (80000, None, RateLimited),
    (80001, None, RateLimited),
    (80002, None, RateLimited),
    (80003, None, RateLimited),
    (80004, None, RateLimited),
    (80005, None, RateLimited),
    (80006, None, RateLimited),
    (80008, None, RateLimited),
    (80009, None, RateLimited),
    (80014, None, RateLimited),
    # Instagram publishing errors.
    (-2, 2207003, Transient),
    (-2, 2207020, InvalidRequest),
    (-1, 2207001, Transient),
    (-1, 2207032, InvalidRequest),
    (-1, 2207053, InvalidRequest),
    (1, 2207057, InvalidRequest),
    (4, 2207051, RateLimited),
    (9, 2207042, RateLimited),
    (24, 2207006, InvalidRequest),
    (24, 2207008, Transient),
    (25, 2207050, PermissionDenied),
    (100, 2207023, InvalidRequest),
    (100, 2207028, InvalidRequest),
    (100, 2207035, InvalidRequest),
    (100, 2207036, InvalidRequest),
    (100, 2207037, InvalidRequest),
    (100, 2207040, InvalidRequest),
    (352, 2207026, InvalidRequest),
    (9004, 2207052, InvalidRequest),
    (9007, 2207027, Transient),
    (36000, 2207004, InvalidRequest),
    (36001, 2207005, InvalidRequest),
    (36003, 2207009, InvalidRequest),
    (36004, 2207010, InvalidRequest),
]


@pytest.mark.parametrize(("code", "subcode", "category"), CASES)
def test_the_code_decides_the_category(code, subcode, category):
    error = graph_error(400, body(code, subcode), {})
    assert type(error) is category, (code, subcode, type(error).__name__)
    assert error.platform_code == (f"{code}/{subcode}" if subcode else str(code))
    assert error.http_status == 400


def test_is_transient_makes_an_unknown_code_retryable():
    assert isinstance(graph_error(400, body(12345, transient=True), {}), Transient)
    assert isinstance(graph_error(400, body(12345, transient=False), {}), InvalidRequest)
    assert isinstance(graph_error(500, body(12345), {}), Transient)


def test_the_wait_comes_from_the_business_use_case_header():
    header = '{"42": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 7}]}'
    error = graph_error(400, body(80001), {"X-Business-Use-Case-Usage": header})
    assert error.retry_after == 7 * 60
    assert graph_error(400, body(4), {}).retry_after == 300
    assert graph_error(400, body(9, 2207042), {}).retry_after == 3600


def test_a_permission_error_names_the_missing_permission():
    message = "(#200) This action requires the pages_manage_posts permission"
    error = graph_error(403, body(200, message=message), {})
    assert error.missing_scopes == ["pages_manage_posts"]


def test_the_user_message_is_kept_with_the_message():
    payload = body(36000, 2207004, message="The image size is too large.")
    payload["error"]["error_user_msg"] = "It should be less than 8 MiB."
    error = graph_error(400, payload, {})
    assert error.detail == "The image size is too large.: It should be less than 8 MiB."


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (429, RateLimited),
        (500, Transient),
        (503, Transient),
        (401, NeedsReauth),
        (403, PermissionDenied),
        (404, NotFound),
        (400, InvalidRequest),
    ],
)
def test_without_a_graph_body_the_status_decides(status, category):
    assert type(graph_error(status, "<html>oops</html>", {})) is category

"""Return URLs are compared normalised: origin exactly, path on segment boundaries, no tricks."""

from __future__ import annotations

import pytest

from gateway.connections.oauth_flow import redirect_target
from gateway.connections.return_urls import check_return_url
from gateway.errors import BadRequest, InvalidInput

from ...conftest import settings_for

ALLOWED = ["https://app.example.com/", "https://shop.example.com/app", "https://bücher.example/"]


@pytest.fixture
def settings(tmp_path):
    return settings_for(tmp_path, oauth={"allowed_return_urls": ALLOWED})


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("https://app.example.com/connected", "https://app.example.com/connected"),
        ("HTTPS://APP.Example.COM/connected", "https://app.example.com/connected"),
        ("https://app.example.com:443/connected", "https://app.example.com/connected"),
        ("https://app.example.com./connected", "https://app.example.com/connected"),
        ("https://app.example.com", "https://app.example.com/"),
        ("https://app.example.com/x?y=1#/done", "https://app.example.com/x?y=1#/done"),
        ("https://shop.example.com/app", "https://shop.example.com/app"),
        ("https://shop.example.com/app/done", "https://shop.example.com/app/done"),
        ("https://BÜCHER.example/ok", "https://xn--bcher-kva.example/ok"),
        ("https://xn--bcher-kva.example/ok", "https://xn--bcher-kva.example/ok"),
        # The gateway's own URL is always allowed.
        ("http://127.0.0.1:8080/connected", "http://127.0.0.1:8080/connected"),
        ("http://LOCALHOST:8080/", "http://localhost:8080/"),
    ],
)
def test_allowed_urls_come_back_in_one_spelling(settings, given, normalised):
    assert check_return_url(settings, given) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com.evil.test/",
        "https://evil.test/?https://app.example.com/",
        "https://shop.example.com/application",  # a prefix, but not on a segment boundary
        "https://shop.example.com/",
        "http://app.example.com/",  # another scheme is another origin
        "https://app.example.com:8443/",
        "http://127.0.0.1:8081/",
    ],
)
def test_other_origins_and_paths_are_not_allowed(settings, url):
    with pytest.raises(InvalidInput):
        check_return_url(settings, url)


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com@evil.test/",
        "https://user:secret@app.example.com/",
        "https://app.example.com\\@evil.test/",
        "https://app.example.com\\evil.test/",
        "https://app.example.com/\\evil.test",
        "https://app.example.com/\t/x",
        " https://app.example.com/",
        "https://app.example.com/connected/../../evil",
        "https://app.example.com/%2e%2E/evil",
        "https://app.example.com/a%2Fb",
        "https://app.example.com:99999/",
        "https://app.exa%6dple.com/",
        "javascript:alert(1)",
        "//app.example.com/",
        "/connected",
        "ftp://app.example.com/",
    ],
)
def test_ambiguous_urls_are_refused_before_any_comparison(settings, url):
    with pytest.raises(BadRequest):
        check_return_url(settings, url)


def test_redirect_parameters_go_into_the_query_before_a_fragment():
    assert redirect_target("https://a.test/x#/done", {"e": "1"}) == "https://a.test/x?e=1#/done"
    assert redirect_target("https://a.test/x?k=v", {"e": "1"}) == "https://a.test/x?k=v&e=1"

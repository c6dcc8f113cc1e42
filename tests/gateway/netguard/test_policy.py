"""What a URL alone shows is refused at once; the settings decide what private targets pass."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidInput
from gateway.netguard import Policy, TargetRefused
from gateway.settings import settings_from_mapping

PUBLIC_ONLY = Policy()
PRIVATE_OK = Policy(allow_private=True)

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/hooks",
    "http://127.1/hooks",
    "http://0x7f000001/hooks",
    "http://2130706433/hooks",
    "http://0177.0.0.1/hooks",
    "http://127.0.0.1./hooks",
    "http://[::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://localhost:8000/hooks",
    "http://LOCALHOST./hooks",
    "http://app.localhost/hooks",
    "https://user@127.0.0.1:8443/hooks",
]
NEVER = [
    "http://0.0.0.0/hooks",
    "http://0/hooks",
    "http://[::]/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://169.254.10.1/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", [*LOOPBACK_SPELLINGS, "http://10.0.0.5/", "http://[fd12::1]/"])
def test_private_targets_are_refused_in_every_spelling(url):
    with pytest.raises(TargetRefused) as refused:
        PUBLIC_ONLY.check_url(url)
    assert isinstance(refused.value, InvalidInput) and refused.value.status == 422
    [problem] = refused.value.errors
    assert problem.field == "url" and problem.code == "target_refused"
    assert "/hooks" not in refused.value.detail  # the host, never the path


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_allow_private_targets_lets_loopback_through(url):
    PRIVATE_OK.check_url(url)


@pytest.mark.parametrize("url", NEVER)
def test_link_local_metadata_and_unspecified_are_refused_even_when_private_is_allowed(url):
    wide = Policy.build(True, ["169.254.0.0/16", "fd00:ec2::/32", "metadata.google.internal"])
    with pytest.raises(TargetRefused):
        wide.check_url(url)


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/"])
def test_only_http_and_https(url):
    with pytest.raises(TargetRefused) as refused:
        PRIVATE_OK.check_url(url)
    assert refused.value.kind == "scheme"


@pytest.mark.parametrize(
    "url", ["http://a.example\\@127.0.0.1/", "http://127.0.0.1:80\\@a.example/", "http:///x", "x"]
)
def test_urls_parsers_disagree_on_are_refused(url):
    with pytest.raises(TargetRefused):
        PUBLIC_ONLY.check_url(url)


def test_public_urls_pass_and_names_wait_for_resolution():
    for url in (
        "https://app.example.com/hooks",
        "http://93.184.215.14:8080/",
        "https://[2606:4700::1111]/",
    ):
        PUBLIC_ONLY.check_url(url)


def test_the_allow_list_opens_named_hosts_and_networks_only():
    policy = Policy.build(False, ["10.1.0.0/16", "hooks.corp.example", "*.svc.internal", "::1"])
    policy.check_url("http://10.1.2.3/")
    policy.check_url("http://[::1]/")
    assert policy.name_allowed("hooks.corp.example") and policy.name_allowed("a.svc.internal")
    assert not policy.name_allowed("svc.internal.evil.example")
    with pytest.raises(TargetRefused):
        policy.check_url("http://10.2.0.1/")
    with pytest.raises(TargetRefused):
        policy.check_url("http://127.0.0.1/")


def test_the_default_depends_on_the_mode():
    sandbox = settings_from_mapping({})
    production = settings_from_mapping(
        {"core": {"mode": "production"}, "vault": {"keys": ["k:" + "A" * 43 + "="]}}
    )
    assert Policy.from_settings(sandbox).allow_private
    assert not Policy.from_settings(production).allow_private
    explicit = settings_from_mapping({"security": {"allow_private_targets": False}})
    policy = Policy.from_settings(explicit)
    assert not policy.allow_private
    # Sandbox mode: the gateway's own address, where the sandboxes are mounted, stays reachable
    # (by any name of this machine), and only that port.
    policy.check_url("http://127.0.0.1:8080/sandbox/meta/")
    policy.check_url("http://localhost:8080/sandbox/meta/")
    for url in ("http://127.0.0.1:8081/", "http://localhost/", "http://10.0.0.1:8080/"):
        with pytest.raises(TargetRefused):
            policy.check_url(url)
    assert not Policy.from_settings(
        settings_from_mapping(
            {
                "core": {"mode": "production"},
                "vault": {"keys": ["k:" + "A" * 43 + "="]},
                "security": {"allowed_hosts": ["hooks.corp.example"]},
            }
        )
    ).origins

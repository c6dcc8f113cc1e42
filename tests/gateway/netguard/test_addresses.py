"""Hosts in every spelling normalise to the address a resolver would connect to."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.netguard import BadHost, Kind, classify, parse_host


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        (
            "\uff11\uff12\uff17.\uff10.\uff10.\uff11",
            "127.0.0.1",
        ),  # fullwidth digits: IDNA maps them to ASCII
        ("0.0.0.0", "0.0.0.0"),
        ("0", "0.0.0.0"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[::1]", "::1"),
        ("[fe80::1%eth0]", "fe80::1"),
    ],
)
def test_every_spelling_of_an_address_is_that_address(spelling, address):
    assert parse_host(spelling).address == ipaddress.ip_address(address)


def test_names_are_normalised_not_resolved():
    assert parse_host("LocalHost.").name == "localhost"
    assert parse_host("bücher.example") == parse_host("xn--bcher-kva.example")
    assert parse_host("hooks.example.com").address is None


@pytest.mark.parametrize("host", ["", "1.2.3.4.5", "example.123", "0x", "a..b", "-a.example"])
def test_hosts_that_are_neither_address_nor_name_are_refused(host):
    with pytest.raises(BadHost):
        parse_host(host)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", Kind.LOOPBACK),
        ("::1", Kind.LOOPBACK),
        ("::ffff:127.0.0.1", Kind.LOOPBACK),
        ("::127.0.0.1", Kind.LOOPBACK),  # IPv4-compatible
        ("2002:7f00:1::", Kind.LOOPBACK),  # 6to4 of 127.0.0.1
        ("0.0.0.0", Kind.UNSPECIFIED),
        ("0.1.2.3", Kind.UNSPECIFIED),
        ("::", Kind.UNSPECIFIED),
        ("10.1.2.3", Kind.PRIVATE),
        ("172.16.0.1", Kind.PRIVATE),
        ("192.168.1.1", Kind.PRIVATE),
        ("100.64.0.1", Kind.PRIVATE),
        ("::ffff:10.0.0.1", Kind.PRIVATE),
        ("fc00::1", Kind.UNIQUE_LOCAL),
        ("fd12:3456::1", Kind.UNIQUE_LOCAL),
        ("169.254.1.1", Kind.LINK_LOCAL),
        ("fe80::1", Kind.LINK_LOCAL),
        ("169.254.169.254", Kind.METADATA),
        ("::ffff:169.254.169.254", Kind.METADATA),
        ("64:ff9b::a9fe:a9fe", Kind.METADATA),  # NAT64 of 169.254.169.254
        ("fd00:ec2::254", Kind.METADATA),
        ("224.0.0.1", Kind.MULTICAST),
        ("ff02::1", Kind.MULTICAST),
        ("192.0.2.1", Kind.RESERVED),
        ("240.0.0.1", Kind.RESERVED),
        ("255.255.255.255", Kind.RESERVED),
        ("2001:db8::1", Kind.RESERVED),
        ("93.184.215.14", Kind.PUBLIC),
        ("::ffff:93.184.215.14", Kind.PUBLIC),
        ("2606:4700::1111", Kind.PUBLIC),
    ],
)
def test_addresses_are_classified(address, kind):
    assert classify(ipaddress.ip_address(address)) is kind

"""A URL host in any spelling → one normal form, and the kind of address it names."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from enum import StrEnum

from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Kind(StrEnum):
    """What an address is, most dangerous first: :func:`classify` answers the first that fits."""

    METADATA = "metadata"  # cloud instance metadata: credentials one GET away
    UNSPECIFIED = "unspecified"  # 0.0.0.0/8, ::: connecting to it reaches this machine
    LOOPBACK = "loopback"
    LINK_LOCAL = "link_local"
    MULTICAST = "multicast"
    PRIVATE = "private"  # RFC 1918, shared address space (100.64/10), IPv6 site-local
    UNIQUE_LOCAL = "unique_local"  # fc00::/7
    RESERVED = "reserved"  # documentation, benchmarking, 240/4, broadcast, anything not global
    PUBLIC = "public"


# Instance metadata services. fd00:ec2::254 is AWS's over IPv6 (inside unique-local, so it
# must be named: allowing private targets must not open it); 100.100.100.200 is Alibaba's.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# Names that are the metadata service wherever they resolve (GCE answers them itself).
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
_PRIVATE_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What inet_aton accepts: 1 to 4 dot-separated decimal, octal (0…) or hex (0x…) parts. The
# platform's inet_aton also takes trailing junk after whitespace, so the characters are checked
# first; anything shaped like this that it refuses is no host name either (see parse_host).
_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")
_LAST_LABEL_NUMERIC = re.compile(r"(^|\.)(0x[0-9a-f]*|[0-9]+)$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class BadHost(ValueError):
    """The host cannot be a target at all: not an address, not a valid name."""


@dataclass(frozen=True, slots=True)
class Host:
    """A URL's host normalised: lower-case ASCII (IDNA), no trailing dot; ``address`` when it is
    an IP literal in any spelling."""

    name: str
    address: IPAddress | None = None


def parse_host(raw: str) -> Host:
    """Normalise a host as a URL gives it (``[v6]``, IDNA, ``127.1``, ``0x7f000001``, ``x.``).

    :raises BadHost: for an empty host, a malformed name, or a numeric one no resolver agrees on.
    """
    host = raw.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            # A zone (fe80::1%eth0) only ever qualifies a link-local address: the address decides.
            return Host(host.lower(), ipaddress.IPv6Address(host.split("%", 1)[0]))
        except ValueError:
            raise BadHost(f"{raw!r} is not an IPv6 address") from None
    try:
        # IDNA as yarl (and so aiohttp) applies it: fullwidth digits become ASCII ones here.
        host = URL.build(scheme="http", host=host).raw_host or ""
    except ValueError:
        raise BadHost(f"{raw!r} is not a valid host name") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]  # the root: "localhost." is "localhost"
    if not host:
        raise BadHost("the host is empty")
    if _NUMERIC_V4.match(host):
        try:
            return Host(host, ipaddress.IPv4Address(socket.inet_aton(host)))
        except OSError:
            raise BadHost(f"{raw!r} is not a valid IPv4 address") from None
    if _LAST_LABEL_NUMERIC.search(host):
        # WHATWG URL: a host whose last label is a number is an IPv4 address or invalid,
        # never a name to look up (a resolver might read it as an address anyway).
        raise BadHost(f"{raw!r} is not a valid IPv4 address")
    if not all(_LABEL.match(label) for label in host.split(".")) or len(host) > 253:
        raise BadHost(f"{raw!r} is not a valid host name")
    return Host(host)


def embedded_v4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64, Teredo client)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    packed = address.packed
    if packed[:12] == bytes(12) and int(address) > 1:
        return ipaddress.IPv4Address(packed[12:])  # ::a.b.c.d, the deprecated compatible form
    if address in _NAT64:
        return ipaddress.IPv4Address(packed[12:])
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def classify(address: IPAddress) -> Kind:
    """The kind of ``address``. An IPv4-mapped one is its IPv4 address (the socket connects
    there); another IPv6 address carrying an IPv4 one is the worse of the two."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _classify_one(address.ipv4_mapped)
    own = _classify_one(address)
    inner = embedded_v4(address)
    if inner is None:
        return own
    order = list(Kind)
    return min(own, _classify_one(inner), key=order.index)


def _classify_one(address: IPAddress) -> Kind:
    if address in METADATA_ADDRESSES:
        return Kind.METADATA
    if address.is_unspecified or (
        isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK
    ):
        return Kind.UNSPECIFIED
    if address.is_loopback:
        return Kind.LOOPBACK
    if address.is_link_local:
        return Kind.LINK_LOCAL
    if address.is_multicast:
        return Kind.MULTICAST
    if isinstance(address, ipaddress.IPv4Address):
        if any(address in network for network in _PRIVATE_V4):
            return Kind.PRIVATE
    else:
        if address.is_site_local:
            return Kind.PRIVATE
        if address in _UNIQUE_LOCAL:
            return Kind.UNIQUE_LOCAL
    if not address.is_global:
        return Kind.RESERVED
    return Kind.PUBLIC


_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")

"""Which hosts and addresses the gateway may call on a client's behalf, built from settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from yarl import URL

from ..errors import FieldProblem, InvalidInput
from .addresses import METADATA_NAMES, BadHost, Host, IPAddress, Kind, classify, parse_host

if TYPE_CHECKING:
    from ..settings import Settings

# Never called, whatever the settings say: no receiver or media host lives there, and the
# metadata service hands out the machine's cloud credentials.
NEVER = frozenset({Kind.METADATA, Kind.LINK_LOCAL, Kind.MULTICAST, Kind.UNSPECIFIED})
# Opened by `security.allow_private_targets` (a developer's receiver on this machine or LAN).
PRIVATE = frozenset({Kind.LOOPBACK, Kind.PRIVATE, Kind.UNIQUE_LOCAL})
# Opened for a host or network an operator put in `security.allowed_hosts`.
ALLOW_LISTABLE = PRIVATE | {Kind.RESERVED}
SCHEMES = frozenset({"http", "https"})


class TargetRefused(InvalidInput):
    """A URL the gateway will not call on a client's behalf. Never retried: the same URL (or
    what its name resolves to) is refused again until the client or the operator changes it.
    ``kind`` says why: an address kind (``loopback``, ``metadata``...), ``scheme``, ``host`` or
    ``redirect``."""

    def __init__(self, detail: str, *, kind: str, field: str = "url") -> None:
        super().__init__(detail, errors=[FieldProblem(field, "target_refused", detail)])
        self.kind = kind
        self.field = field


@dataclass(frozen=True, slots=True)
class Policy:
    """``allow_private``: loopback, private and unique-local addresses may be called;
    ``names``/``suffixes``/``networks``: an operator's allow-list (exact names, ``*.domain``
    entries as ``.domain``, IP networks), which opens those kinds and reserved ones too;
    ``origins``: (host, port) pairs opened the same way (the gateway's own sandboxes)."""

    allow_private: bool = False
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())
    origins: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """The policy of ``settings``; in sandbox mode the gateway's own address (where the
        sandboxes are mounted) and each platform's sandbox address are allowed as well."""
        origins = _sandbox_origins(settings) if settings.sandbox_mode else ()
        return cls.build(settings.allow_private_targets, settings.security.allowed_hosts, origins)

    @classmethod
    def build(
        cls,
        allow_private: bool,
        entries: list[str] | tuple[str, ...] = (),
        origins: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
    ) -> Policy:
        names, suffixes, networks = set(), [], []
        for entry in entries:
            kind, value = parse_allowed(entry)
            if kind == "network":
                networks.append(value)
            elif kind == "suffix":
                suffixes.append(value)
            else:
                names.add(value)
        return cls(
            allow_private, frozenset(names), tuple(suffixes), tuple(networks), frozenset(origins)
        )

    def name_allowed(self, name: str) -> bool:
        return name in self.names or any(name.endswith(s) for s in self.suffixes)

    def check_address(self, address: IPAddress, host: Host, port: int | None = None) -> None:
        """Refuse ``address`` (``host`` resolved to it, or spelt it) unless the policy allows it.

        :raises TargetRefused: naming the kind of address.
        """
        kind = classify(address)
        if kind is Kind.PUBLIC:
            return
        shown = host.name if host.address is not None else f"{host.name} ({address})"
        if kind in NEVER:
            raise TargetRefused(
                f"{shown} is a {_label(kind)} address, which the gateway never calls", kind=kind
            )
        if kind in PRIVATE and self.allow_private:
            return
        if kind in ALLOW_LISTABLE and (
            self.name_allowed(host.name)
            or any(address in n for n in self.networks)
            or (host.name, port) in self.origins
        ):
            return
        raise TargetRefused(
            f"{shown} is a {_label(kind)} address; the gateway calls only public addresses "
            "unless the operator allows it (security.allow_private_targets, "
            "security.allowed_hosts)",
            kind=kind,
        )

    def check_host(self, host: Host, port: int | None = None) -> None:
        """What the host alone shows: an address in any spelling, or a name that is always
        this machine (``localhost``) or the metadata service."""
        if host.address is not None:
            self.check_address(host.address, host, port)
        elif host.name in METADATA_NAMES:
            raise TargetRefused(
                f"{host.name} is the cloud metadata service, which the gateway never calls",
                kind=Kind.METADATA,
            )
        elif host.name == "localhost" or host.name.endswith(".localhost"):
            self.check_address(ipaddress.IPv4Address("127.0.0.1"), host, port)

    def check_url(self, url: str, *, field: str = "url") -> Host:
        """Check what ``url`` alone shows (scheme, host in every spelling); names are checked
        again once resolved, when the gateway connects.

        :raises TargetRefused: with a field problem on ``field``.
        """
        try:
            # yarl, as aiohttp itself parses it: one parser, so the host checked is the host
            # connected to (urlsplit and a client disagreeing on `a\\@b` is a classic way in).
            parsed = URL(url)
            scheme, raw, port = parsed.scheme.lower(), parsed.raw_host, parsed.port
        except (TypeError, ValueError):
            raise TargetRefused(f"{field} is not a usable URL", kind="host", field=field) from None
        if scheme not in SCHEMES:
            raise TargetRefused(f"{field} must be an http or https URL", kind="scheme", field=field)
        if not raw:
            raise TargetRefused(f"{field} has no host", kind="host", field=field)
        try:
            host = parse_host(raw)
        except BadHost as err:
            raise TargetRefused(f"{field}: {err}", kind="host", field=field) from None
        try:
            self.check_host(host, port)
        except TargetRefused as err:
            raise TargetRefused(f"{field}: {err.detail}", kind=err.kind, field=field) from None
        return host


def parse_allowed(entry: str) -> tuple[str, object]:
    """One `security.allowed_hosts` entry: ``("network", IPNetwork)`` for an address or CIDR,
    ``("suffix", ".domain")`` for ``*.domain``, else ``("name", name)``.

    :raises ValueError: for an entry that is none of these.
    """
    text = entry.strip()
    try:
        return "network", ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        pass
    wildcard = text.startswith("*.")
    try:
        host = parse_host(text[2:] if wildcard else text)
    except BadHost as err:
        raise ValueError(str(err)) from None
    if host.address is not None:
        return "network", ipaddress.ip_network(host.address)
    return ("suffix", "." + host.name) if wildcard else ("name", host.name)


def _sandbox_origins(settings: Settings) -> list[tuple[str, int]]:
    """The gateway's own (host, port) and the platforms' sandbox ones, normalised as a URL
    naming them would be; a loopback or all-interfaces host is this machine by any name."""
    found = []
    for url in [settings.base_url] + [p.sandbox_url for p in settings.platforms.values()]:
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            host = parse_host(parts.hostname or "")
        except (ValueError, BadHost):
            continue
        names = [host.name]
        if host.address is not None and (host.address.is_unspecified or host.address.is_loopback):
            names = ["127.0.0.1", "::1", "localhost"]
        found += [(name, port) for name in names]
    return found


def _label(kind: Kind | str) -> str:
    return str(kind).replace("_", "-")

"""Resolve once, refuse if any address is off limits, and pin the connection to what was checked."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address

from .addresses import BadHost, parse_host
from .policy import Policy, TargetRefused


class GuardedResolver(AbstractResolver):
    """Wraps a real resolver: every address a name resolves to is checked before any is used.

    aiohttp's ``TCPConnector`` connects to exactly the addresses its resolver returns (with
    the original name kept for TLS), so what was checked is what is connected to: a second,
    different answer from DNS (rebinding) is never asked for. A name with one refused address
    among public ones is refused whole: such an answer is an attack or a mistake.
    """

    def __init__(self, policy: Policy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            parsed = parse_host(host)
        except BadHost as err:
            raise TargetRefused(str(err), kind="host") from None
        self.policy.check_host(parsed, port)
        if parsed.address is not None:
            # A spelling aiohttp does not take for an address (0x7f000001): the system resolver
            # would read it as one, so it is answered here, as the address it spells.
            return [_result(host, parsed.address, port)]
        results = await self.inner.resolve(host, port, family)
        for result in results:
            address = ipaddress.ip_address(result["host"].split("%", 1)[0])
            self.policy.check_address(address, parsed, port)
        return results

    async def close(self) -> None:
        await self.inner.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` on a :class:`GuardedResolver` that also checks IP-literal hosts,
    which aiohttp connects to without asking its resolver."""

    def __init__(self, policy: Policy, resolver: GuardedResolver, **kwargs) -> None:
        # No DNS cache: each new connection resolves once and connects to that very answer,
        # checked; one lookup per connection is cheap next to the request it carries.
        super().__init__(resolver=resolver, use_dns_cache=False, **kwargs)
        self.policy = policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence | None = None
    ) -> list[ResolveResult]:
        if is_ip_address(host):
            try:
                parsed = parse_host(host)
            except BadHost as err:
                raise TargetRefused(str(err), kind="host") from None
            self.policy.check_host(parsed, port)
        return await super()._resolve_host(host, port, traces)


class StaticResolver(AbstractResolver):
    """Answers from a table of names to addresses (tests, and the sandboxes' fixed hosts);
    a name not in the table does not resolve."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = {
            name.lower().rstrip("."): list(addresses) for name, addresses in table.items()
        }

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self.table.get(host.lower().rstrip("."))
        if not addresses:
            raise OSError(socket.EAI_NONAME, f"{host} does not resolve")
        return [_result(host, ipaddress.ip_address(a), port) for a in addresses]

    async def close(self) -> None:
        pass


def _result(host: str, address, port: int) -> ResolveResult:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return ResolveResult(
        hostname=host,
        host=str(address),
        port=port,
        family=family,
        proto=0,
        flags=socket.AI_NUMERICHOST,
    )

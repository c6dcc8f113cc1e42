"""Failed authentications counted per client address: past the limit, the address waits (429).

Without it a caller may guess keys as fast as the gateway answers. The address is the TCP
peer's (the gateway trusts no forwarding header); an IPv6 caller is counted by its /64, which
one machine can fill with addresses of its own. Valid requests only pay a dictionary lookup,
but while an address waits every attempt from it is refused, valid or not: answering a valid
key differently would leave the guessing open. Counts live in the process.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict

from .. import clock


class FailedAuthentications:
    """At most ``limit`` failures per address in a ``window`` of seconds from its first one."""

    def __init__(self, limit: int, window: float, max_addresses: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        # address -> (start of its window, failures in it); oldest first, bounded in size.
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def wait(self, address: str | None) -> float:
        """Seconds the address must wait before it may try again; 0 when it may now."""
        if self.limit <= 0 or not self._counts:
            return 0.0
        entry = self._counts.get(_scope(address))
        if entry is None or entry[1] < self.limit:
            return 0.0
        return max(0.0, entry[0] + self.window - clock.timestamp())

    def failed(self, address: str | None) -> None:
        if self.limit <= 0:
            return
        scope, now = _scope(address), clock.timestamp()
        start, count = self._counts.pop(scope, (now, 0))
        if start + self.window <= now:
            start, count = now, 0
        self._counts[scope] = (start, count + 1)
        while len(self._counts) > self.max_addresses:
            self._counts.popitem(last=False)


def _scope(address: str | None) -> str:
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)

"""The one guard for every URL the gateway calls on a client's behalf (webhooks, media, later).

Nothing else opens a connection to a client-given URL: check a URL when it is given
(:meth:`Policy.check_url`), and call it through :meth:`Guard.session`, which resolves each name
once, refuses non-public addresses in every spelling, connects to the address it checked and
re-checks (or refuses) every redirect.
"""

from .addresses import BadHost, Host, Kind, classify, parse_host
from .policy import Policy, TargetRefused
from .resolver import GuardedConnector, GuardedResolver, StaticResolver
from .session import Guard, GuardedSession

__all__ = [
    "BadHost",
    "Guard",
    "GuardedConnector",
    "GuardedResolver",
    "GuardedSession",
    "Host",
    "Kind",
    "Policy",
    "StaticResolver",
    "TargetRefused",
    "classify",
    "parse_host",
]

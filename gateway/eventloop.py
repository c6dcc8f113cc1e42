"""The event loop of `gateway serve` and `gateway worker`: uvloop if installed, else asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .errors import ConfigError

CHOICES = ("auto", "uvloop", "asyncio")  # server.event_loop


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A maker of new loops for ``server.event_loop``: ``auto`` takes uvloop when it is
    installed (it carries the same work on noticeably less CPU), ``uvloop`` requires it."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError(
                    "server.event_loop", "uvloop is not installed (pip install uvloop)"
                ) from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"

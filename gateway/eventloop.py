"""The event loop of `gateway serve` and `gateway worker`: uvloop if installed, else asyncio;
and what starting made, kept out of the garbage collector's way."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import structlog

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


def freeze_startup_objects() -> None:
    """For a long-running process once started: stop walking what starting made at every GC.

    Modules, plugins, the ORM's metadata live as long as the process (some 130,000 objects);
    a full collection walked them all, 50-65 ms of a stopped event loop each time. Frozen,
    they leave the collector's passes.
    """
    gc.collect()
    gc.freeze()
    structlog.get_logger("gateway").info("process.startup_frozen", objects=gc.get_freeze_count())

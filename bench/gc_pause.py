"""The garbage collector's full pass in a started gateway, before and after freezing startup.

Run with `.venv/bin/python bench/gc_pause.py [--runs N]`.
A gateway is started as `gateway demo` starts one (the built-in platforms and their sandboxes,
a throw-away SQLite database); then a full collection is timed ``--runs`` times, then
``eventloop.freeze_startup_objects()`` runs (as `gateway serve` and `gateway worker` do once
started) and the collection is timed again. A full pass stops the event loop: every request
and job in flight waits it out.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time

from gateway.eventloop import freeze_startup_objects
from gateway.ops.local import LocalGateway
from gateway.settings import load_settings
from gateway.telemetry import configure_logging


def full_passes(runs: int) -> list[float]:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        gc.collect()
        took.append((time.perf_counter() - started) * 1000)
    return took


def line(label: str, took: list[float], objects: int) -> str:
    return f"{label:<28} {statistics.median(took):8.1f} {max(took):8.1f} {objects:>10,}"


async def main(runs: int) -> None:
    settings = load_settings(None)
    configure_logging(settings.logging)
    async with LocalGateway(settings):
        print(f"{'full collection':<28} {'p50 ms':>8} {'max ms':>8} {'walked':>10}")
        print(line("as started", full_passes(runs), len(gc.get_objects())))
        freeze_startup_objects()
        print(line("startup objects frozen", full_passes(runs), len(gc.get_objects())))
        print(f"frozen: {gc.get_freeze_count():,} objects")
        gc.unfreeze()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))

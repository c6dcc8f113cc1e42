"""The event loop `gateway serve` and `gateway worker` run on."""

from __future__ import annotations

import asyncio
import sys

import pytest

from gateway.errors import ConfigError
from gateway.eventloop import loop_factory, loop_name
from gateway.settings import load_settings


@pytest.mark.parametrize(
    ("choice", "expected"), [("auto", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")]
)
def test_the_configured_loop_is_made(choice, expected):
    loop = loop_factory(choice)()
    try:
        assert loop_name(loop) == expected
        assert loop.run_until_complete(asyncio.sleep(0, result="ran")) == "ran"
    finally:
        loop.close()


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # importing it now fails
    loop = loop_factory("auto")()
    try:
        assert loop_name(loop) == "asyncio"
    finally:
        loop.close()
    with pytest.raises(ConfigError, match=r"server\.event_loop: uvloop is not installed"):
        loop_factory("uvloop")


def test_an_unknown_loop_is_a_config_error():
    with pytest.raises(ConfigError, match=r"server\.event_loop"):
        load_settings(environ={"GATEWAY_SERVER_EVENT_LOOP": "trio"})

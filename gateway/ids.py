"""Opaque identifiers with a readable prefix (`ten_…`, `key_…`, `conn_…`)."""

from __future__ import annotations

import base64
import os

from . import clock

# Base32's 32 symbols (a-z, 2-7) in ASCII order, so that the text of an id sorts as its bits do.
_SYMBOLS = "234567abcdefghijklmnopqrstuvwxyz"
_TO_SYMBOLS = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _SYMBOLS.encode())
_PAIRS = [a + b for a in _SYMBOLS for b in _SYMBOLS]  # 10 bits -> two symbols
# Random symbols made many ids at a time (one urandom call and one encoding for 256 ids,
# instead of one each): list.pop() hands each out once, whichever thread asks.
_RANDOM_TAILS: list[str] = []
_TAIL = 14  # symbols (70 bits) after a sortable id's 10 symbols (50 bits) of time
os.register_at_fork(after_in_child=_RANDOM_TAILS.clear)  # a child never reuses its parent's


def new_id(prefix: str) -> str:
    """``prefix`` + "_" + 120 random bits in lower-case base32."""
    return f"{prefix}_{base64.b32encode(os.urandom(15)).translate(_TO_SYMBOLS).decode()}"


def new_sortable_id(prefix: str) -> str:
    """Like :func:`new_id`, but ids made later sort after earlier ones, by the millisecond.

    50 bits of Unix time in milliseconds, then 70 random bits, in the same 24 symbols. For rows
    inserted at a high rate: their index entries go to the end of the index, where the last
    commit left its pages, rather than to a random page each (fewer pages written per commit).
    """
    ms = int(clock.timestamp() * 1000)
    pairs = _PAIRS
    try:
        tail = _RANDOM_TAILS.pop()
    except IndexError:
        tail = _refill()
    return (
        f"{prefix}_{pairs[ms >> 40 & 1023]}{pairs[ms >> 30 & 1023]}{pairs[ms >> 20 & 1023]}"
        f"{pairs[ms >> 10 & 1023]}{pairs[ms & 1023]}{tail}"
    )


def _refill() -> str:
    symbols = base64.b32encode(os.urandom(_TAIL * 5 * 256 // 8)).translate(_TO_SYMBOLS).decode()
    tails = [symbols[i : i + _TAIL] for i in range(0, len(symbols), _TAIL)]
    _RANDOM_TAILS.extend(tails[1:])
    return tails[0]

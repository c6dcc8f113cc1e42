"""Opaque identifiers with a readable prefix (`ten_…`, `key_…`, `conn_…`)."""

from __future__ import annotations

import base64
import os
import time

# Base32's 32 symbols (a-z, 2-7) in ASCII order, so that the text of an id sorts as its bits do.
_SORTED_SYMBOLS = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"234567abcdefghijklmnopqrstuvwxyz"
)


def new_id(prefix: str) -> str:
    """``prefix`` + "_" + 120 random bits in lower-case base32."""
    return f"{prefix}_{_base32(os.urandom(15))}"


def new_sortable_id(prefix: str) -> str:
    """Like :func:`new_id`, but ids made later sort after earlier ones, by the millisecond.

    48 bits of Unix time in milliseconds, then 72 random bits. For rows inserted at a high
    rate: their index entries go to the end of the index, where the last commit left its
    pages, rather than to a random page each (fewer pages written per commit).
    """
    stamp = time.time_ns() // 1_000_000
    return f"{prefix}_{_base32(stamp.to_bytes(6, 'big') + os.urandom(9))}"


def _base32(raw: bytes) -> str:
    return base64.b32encode(raw).translate(_SORTED_SYMBOLS).decode()

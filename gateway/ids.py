"""Opaque identifiers with a readable prefix (`ten_…`, `key_…`, `conn_…`)."""

from __future__ import annotations

import base64
import os


def new_id(prefix: str) -> str:
    """``prefix`` + "_" + 120 random bits in lower-case base32."""
    return f"{prefix}_{base64.b32encode(os.urandom(15)).decode().lower()}"

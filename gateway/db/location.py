"""Name a database for a person: which server and database, or which file, never a password."""

from __future__ import annotations

import os
from urllib.parse import urlencode

from sqlalchemy.engine import make_url

MASK = "***"
# Connection arguments that carry a credential when written in the URL's query string.
_SECRET_QUERY_WORDS = ("pass", "secret", "token", "key")


def describe(url: str) -> str:
    """``url`` as an operator tells databases apart: a SQLite file as an absolute path, a
    server's URL without its driver and with every password replaced by ``***``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return "sqlite in memory"
        # Relative paths are relative to where the command runs: the cause of most mix-ups.
        return os.path.abspath(parsed.database)
    # The driver ("+asyncpg") says nothing an operator needs.
    bare = parsed.set(drivername=parsed.get_backend_name(), query={})
    text = bare.render_as_string(hide_password=True)
    query = {
        key: MASK if any(word in key.lower() for word in _SECRET_QUERY_WORDS) else value
        for key, value in parsed.query.items()
    }
    return f"{text}?{urlencode(query, doseq=True, safe='*/')}" if query else text

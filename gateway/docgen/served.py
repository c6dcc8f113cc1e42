"""The OpenAPI document a gateway with the built-in plugins serves at `GET /openapi.json`."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from ..host import Gateway
from ..plugins import CORE_DISTRIBUTION, ENTRY_POINT_GROUP
from ..settings import settings_from_mapping
from ..web.app import build_spec


def docs_gateway() -> Gateway:
    """A gateway on the code's defaults with this distribution's plugins only: no config file,
    no environment and no third-party plugin, so the document is the same wherever it is made."""
    builtin = [
        (entry.name, entry.load())
        for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        if entry.dist is not None and entry.dist.metadata["Name"] == CORE_DISTRIBUTION
    ]
    return Gateway.from_settings(
        settings_from_mapping({}), extra_plugins=builtin, entry_points=False
    )


def served_document() -> dict[str, Any]:
    """What `GET /openapi.json` answers (its handler returns the same ``document()``)."""
    return build_spec(docs_gateway()).document()

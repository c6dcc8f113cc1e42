"""The Meta plugin (Facebook Pages and Instagram Business): hook implementations only."""

from __future__ import annotations

from gateway import hookimpl


@hookimpl
def register_connectors(registry):
    from .connector import MetaConnector

    registry.add(MetaConnector)


@hookimpl
def register_sandboxes(registry):
    from .sandbox import MetaSandbox

    registry.add(MetaSandbox)

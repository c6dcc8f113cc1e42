"""The Meta plugin (Facebook Pages and Instagram Business): its connector and its sandbox."""

from __future__ import annotations

from gateway import hookimpl


@hookimpl
def register_sandboxes(registry):
    from .sandbox import MetaSandbox

    registry.add(MetaSandbox)

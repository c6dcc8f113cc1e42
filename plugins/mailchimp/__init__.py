"""The built-in Mailchimp plugin: hook implementations only."""

from __future__ import annotations

from gateway import hookimpl


@hookimpl
def register_connectors(registry):
    from .connector import MailchimpConnector

    registry.add(MailchimpConnector)


@hookimpl
def register_sandboxes(registry):
    from .sandbox import MailchimpSandbox

    registry.add(MailchimpSandbox)


@hookimpl
def register_routes(registry):
    from .routes import register

    register(registry)

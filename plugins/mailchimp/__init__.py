"""The built-in Mailchimp plugin: email campaigns to audiences, and the Marketing API sandbox."""

from __future__ import annotations

from gateway import hookimpl


@hookimpl
def register_sandboxes(registry):
    from .sandbox import MailchimpSandbox

    registry.add(MailchimpSandbox)

"""What Mailchimp would refuse, found before anything is queued, and the options it takes.

``OPTIONS_SCHEMA`` and the connector's limits are enforced by the core; ``check`` adds what
they cannot say (the audience's sender defaults, addresses, what goes with what).
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from gateway import AccountRef, FieldProblem, PublishRequest, clock

from .const import (
    CAMPAIGN_TITLE_MAX,
    EMAIL,
    FROM_NAME_MAX,
    PREVIEW_MAX,
    TEST_EMAILS_MAX,
)

# `options.mailchimp` of POST /api/publish, as /api/platforms documents it.
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fromName": {
            "type": "string",
            "maxLength": FROM_NAME_MAX,
            "description": "Sender name; default: the audience's",
        },
        "replyTo": {
            "type": "string",
            "format": "email",
            "description": "Reply-to address; default: the audience's from address",
        },
        "previewText": {"type": "string", "maxLength": PREVIEW_MAX},
        "campaignTitle": {
            "type": "string",
            "maxLength": CAMPAIGN_TITLE_MAX,
            "description": "Internal campaign name; default: the subject",
        },
        "ctaText": {"type": "string", "maxLength": 80, "description": "Label of the link button"},
        "templateId": {"type": "integer", "description": "A saved template to fill"},
        "sections": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Text for the template's editable sections, by name",
        },
        "testEmails": {
            "type": "array",
            "items": {"type": "string", "format": "email"},
            "minItems": 1,
            "maxItems": TEST_EMAILS_MAX,
            "description": "Send a test to these addresses first",
        },
        "testSendType": {"enum": ["html", "plaintext"]},
        "testOnly": {
            "type": "boolean",
            "description": "Send the tests only and leave the campaign as a draft",
        },
    },
}


def _text(options: dict[str, Any], key: str) -> str | None:
    value = options.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _is_web_url(value: str) -> bool:
    try:
        url = URL(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host) and url.is_absolute()


def sender(request: PublishRequest, account: AccountRef) -> tuple[str | None, str | None]:
    """(from name, reply-to): the request's options, else the audience's defaults."""
    options = request.options
    from_name = _text(options, "fromName") or (account.metadata.get("fromName") or None)
    reply_to = _text(options, "replyTo") or (account.metadata.get("fromEmail") or None)
    return from_name, reply_to


def check(request: PublishRequest, account: AccountRef) -> list[FieldProblem]:
    """What the declarations cannot say: the core has already held the options to
    ``OPTIONS_SCHEMA``, the account to an audience and the title to the subject's length."""
    problems: list[FieldProblem] = []

    def problem(field: str, code: str, message: str) -> None:
        problems.append(FieldProblem(field, code, message))

    options = request.options
    if not (request.title or "").strip():
        problem("title", "required", "the title is the email's subject line: write one")
    from_name, reply_to = sender(request, account)
    if from_name is None:
        problem(
            "options.mailchimp.fromName",
            "required",
            f"the audience {account.name!r} has no default from name: "
            "give options.mailchimp.fromName",
        )
    if reply_to is None:
        problem(
            "options.mailchimp.replyTo",
            "required",
            f"the audience {account.name!r} has no default from address: "
            "give options.mailchimp.replyTo",
        )
    elif not EMAIL.match(reply_to):
        problem("options.mailchimp.replyTo", "invalid", "use an email address")
    template_id = options.get("templateId")
    if "sections" in options and template_id is None:
        problem("options.mailchimp.sections", "invalid", "sections need a templateId")
    if template_id is None and not ((request.body or "").strip() or request.media_urls):
        problem("body", "required", "write a body, add media, or fill a template (templateId)")
    if request.link is not None and not _is_web_url(request.link):
        problem("link", "invalid", "use an absolute http(s) URL")
    for index, url in enumerate(request.media_urls):
        if not _is_web_url(url):
            problem(f"mediaUrls.{index}", "invalid", "use an absolute http(s) URL")
    # The schema's `format: email` only annotates (jsonschema does not check formats).
    tests = options.get("testEmails")
    if tests is not None and not all(EMAIL.match(t) for t in tests):
        problem("options.mailchimp.testEmails", "invalid", "every entry must be an email address")
    if options.get("testOnly") and not tests:
        problem("options.mailchimp.testOnly", "invalid", "testOnly needs testEmails")
    if request.scheduled_at is not None:
        if options.get("testOnly"):
            problem("scheduledAt", "invalid", "a test-only request cannot be scheduled")
        if request.scheduled_at <= clock.now():
            problem("scheduledAt", "past", "Mailchimp schedules only future times")
    return problems

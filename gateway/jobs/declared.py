"""What a connector declares as data (post kinds, limits, options), enforced once at submit.

Plugins declare these rules instead of repeating them in ``check``; ``/api/platforms`` shows
the same declarations, so a client reading them learns exactly what is refused here.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator

from ..connector import Connector
from ..errors import FieldProblem, InvalidInput
from ..posts import media_type_of
from ..types import AccountRef, PostKind, PublishRequest

# The request field a post kind comes from, to name when the kind is refused.
_KIND_FIELD = {PostKind.TEXT: "body", PostKind.LINK: "link"}
# Each connector class's compiled options schema, and whether it takes no options at all.
_validators: dict[type[Connector], tuple[Draft202012Validator, bool]] = {}


def refusals(
    connector: Connector, request: PublishRequest, account: AccountRef, options: Any = None
) -> list[FieldProblem]:
    """Everything the platform would refuse ``request`` for: what the connector declares, then
    its own ``check``, which is given only a declared account kind and options its schema
    takes (the rest of the declarations broken or not, so that the client hears it all).

    ``options`` is the request's ``options.<platform>`` as sent (None: ``request.options``).
    """
    raw = request.options if options is None else options
    problems = account_problems(connector, account) or option_problems(connector, raw)
    if problems:
        return problems
    problems = post_problems(connector, request, account)
    return problems + [p for p in connector.check(request, account) if p not in problems]


def platform_options(body: dict[str, Any], platform: str) -> Any:
    """The request's ``options.<platform>`` entry (None when absent).

    :raises InvalidInput: for options under any other key: they would be dropped unread, and
        the client would believe them taken.
    """
    options = body.get("options") or {}
    strays = [key for key in options if key != platform]
    if strays:
        raise InvalidInput(
            f"options are keyed by the target platform, {platform}",
            errors=[
                FieldProblem(
                    f"options.{key}",
                    "not_this_platform",
                    f"this account is on {platform}: put its options under options.{platform}",
                )
                for key in strays
            ],
        )
    return options.get(platform)


def option_problems(connector: Connector, options: Any) -> list[FieldProblem]:
    """How ``options.<platform>`` breaks the connector's ``options_schema``, key by key."""
    declaring = type(connector)
    compiled = _validators.get(declaring)
    if compiled is None:  # once per connector class: compiling costs more than validating
        validator = Draft202012Validator(declaring.options_json_schema())
        compiled = _validators[declaring] = (validator, validator.is_valid({}))
    validator, takes_none = compiled
    if (options is None or options == {}) and takes_none:  # most posts carry none: skip the rest
        return []
    prefix = f"options.{connector.platform}"
    problems: list[FieldProblem] = []
    for error in sorted(
        validator.iter_errors(options), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        path = ".".join([prefix, *(str(p) for p in error.absolute_path)])
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            problems += [
                FieldProblem(f"{path}.{key}", "unknown", _unknown_hint(error.schema, key))
                for key in _undeclared(error.schema, error.instance)
            ]
        elif error.validator == "required":
            # jsonschema reports a missing key on its parent: "'replyTo' is a required property".
            missing = error.message.split("'")[1] if error.message.count("'") >= 2 else ""
            field = f"{path}.{missing}" if missing else path
            problems.append(FieldProblem(field, "required", error.message))
        else:
            problems.append(FieldProblem(path, str(error.validator), error.message))
    return problems


def _undeclared(schema: dict[str, Any], instance: dict[str, Any]) -> list[str]:
    declared = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [
        key for key in instance if key not in declared and not any(p.search(key) for p in patterns)
    ]


def _unknown_hint(schema: dict[str, Any], key: str) -> str:
    declared = sorted(schema.get("properties", {}))
    if not declared:
        return f"{key} is not an option here: this platform takes none"
    return f"{key} is not an option here; use one of {', '.join(declared)}"


def account_problems(connector: Connector, account: AccountRef) -> list[FieldProblem]:
    """An account of a kind the connector does not publish to (when it declares its kinds)."""
    kinds = connector.capabilities.post_kinds
    if not kinds or account.kind in kinds:
        return []
    return [
        FieldProblem(
            "accountId",
            "unsupported",
            f"{connector.platform} publishes to accounts of kind {', '.join(sorted(kinds))}; "
            f"this one is {account.kind}",
        )
    ]


def post_problems(
    connector: Connector, request: PublishRequest, account: AccountRef
) -> list[FieldProblem]:
    """The post kind and the limits the connector declares for the account's kind."""
    problems: list[FieldProblem] = []
    allowed = connector.capabilities.post_kinds.get(account.kind)
    kind = connector.post_kind(request, account)
    if allowed is not None and kind is not None and kind not in allowed:
        problems.append(
            FieldProblem(
                _KIND_FIELD.get(kind, "mediaUrls"),
                "unsupported_post_kind",
                f"{account.kind} accounts take {', '.join(str(k) for k in allowed)} posts; "
                f"this one is {kind}",
            )
        )
    limits = connector.limits_for(account.kind)
    title = (request.title or "").strip()
    if limits.title_length is not None and len(title) > limits.title_length:
        problems.append(
            FieldProblem(
                "title",
                "too_long",
                f"the title is {len(title)} characters; {account.kind} posts allow "
                f"{limits.title_length}",
            )
        )
    # A platform with a title of its own publishes the body as the text, else both together.
    caption = (request.body or "") if limits.title_length is not None else (request.text or "")
    if limits.caption_length is not None and len(caption) > limits.caption_length:
        what = "the body is" if limits.title_length is not None else "title and body are"
        problems.append(
            FieldProblem(
                "body",
                "too_long",
                f"{what} {len(caption)} characters; {account.kind} posts allow "
                f"{limits.caption_length}",
            )
        )
    words = caption.split()
    for sign, most, code, name in (
        ("#", limits.hashtags_max, "too_many_hashtags", "hashtags"),
        ("@", limits.mentions_max, "too_many_mentions", "@-mentions"),
    ):
        count = sum(1 for word in words if word.startswith(sign))
        if most is not None and count > most:
            problems.append(
                FieldProblem("body", code, f"{count} {name}; {account.kind} posts allow {most}")
            )
    return problems + _media_problems(request, account.kind, limits)


def _media_problems(request: PublishRequest, account_kind: str, limits) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    count = len(request.media_urls)
    if count < limits.media_count_min:
        problems.append(
            FieldProblem(
                "mediaUrls",
                "required" if count == 0 else "too_few",
                f"{account_kind} posts need at least {limits.media_count_min} media; {count} given",
            )
        )
    if limits.media_count_max is not None and count > limits.media_count_max:
        problems.append(
            FieldProblem(
                "mediaUrls",
                "too_many",
                f"{count} media given; {account_kind} posts take at most {limits.media_count_max}",
            )
        )
    if limits.media_types:
        for index, url in enumerate(request.media_urls):
            media_type = media_type_of(url)
            if media_type is not None and media_type not in limits.media_types:
                problems.append(
                    FieldProblem(
                        f"mediaUrls.{index}",
                        "unsupported_format",
                        f"this is {media_type}; {account_kind} posts take "
                        f"{', '.join(limits.media_types)}",
                    )
                )
    return problems

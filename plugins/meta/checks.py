"""What Meta would refuse that its declarations cannot say: the post kind, and shape rules.

Caption length, hashtags, @-mentions, media count and types per account kind are declared on
the connector (``limits``) and the options by ``OPTIONS``: the core enforces those first.
"""

from __future__ import annotations

from gateway import AccountRef, FieldProblem, PostKind, PublishRequest, media_type_of, shape_kind

from .const import CAROUSEL_MIN, IG_KIND, PAGE_KIND

MEDIA_TYPES = ("IMAGE", "CAROUSEL", "REELS", "STORIES")


def is_video(url: str) -> bool:
    return (media_type_of(url) or "").startswith("video/")


def facebook_kind(request: PublishRequest) -> PostKind:
    return shape_kind(request)


def instagram_kind(request: PublishRequest) -> PostKind:
    media_type = str(request.options.get("mediaType") or "").upper()
    if media_type == "REELS":
        return PostKind.REEL
    if media_type == "STORIES":
        return PostKind.STORY
    if media_type == "CAROUSEL" or len(request.media_urls) > 1:
        return PostKind.CAROUSEL
    if request.media_urls and is_video(request.media_urls[0]):
        return PostKind.REEL  # since 2023 single feed videos are reels
    return PostKind.IMAGE


def post_kind(request: PublishRequest, account: AccountRef) -> PostKind:
    return instagram_kind(request) if account.kind == IG_KIND else facebook_kind(request)


def check(request: PublishRequest, account: AccountRef) -> list[FieldProblem]:
    if account.kind == PAGE_KIND:
        return check_facebook(request)
    return check_instagram(request)


def check_facebook(request: PublishRequest) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    media = request.media_urls
    if request.text is None and not media and not request.link:
        problems.append(
            FieldProblem("body", "required", "write a body or title, add a link, or add media")
        )
    if len(media) > 1 and any(is_video(url) for url in media):
        problems.append(
            FieldProblem("mediaUrls", "mixed_media", "a Facebook video post has exactly one video")
        )
    if media and request.link:
        problems.append(
            FieldProblem("link", "not_with_media", "a Facebook post has a link or media, not both")
        )
    # One schema serves the platform; its options are Instagram's, which a Page does not take.
    problems += [
        FieldProblem(f"options.meta.{name}", "unknown", f"{name} is for Instagram accounts only")
        for name in request.options
    ]
    return problems


def check_instagram(request: PublishRequest) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if request.link:
        problems.append(
            FieldProblem(
                "link",
                "unsupported",
                "Instagram posts cannot carry a link; put the URL in the body instead",
            )
        )
    media = request.media_urls
    if not media:
        return problems  # the declared minimum of one says so
    kind = instagram_kind(request)
    if kind is PostKind.CAROUSEL and len(media) < CAROUSEL_MIN:
        problems.append(
            FieldProblem(
                "mediaUrls",
                "carousel_size",
                f"a carousel has at least {CAROUSEL_MIN} items; {len(media)} given",
            )
        )
    if kind is PostKind.REEL and (len(media) != 1 or not is_video(media[0])):
        problems.append(
            FieldProblem("mediaUrls", "reel_media", "a reel is exactly one MP4 or MOV video")
        )
    if kind is PostKind.STORY and len(media) != 1:
        problems.append(FieldProblem("mediaUrls", "story_media", "a story is one image or video"))
    return problems

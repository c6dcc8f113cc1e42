"""What Meta would refuse, found without the network: the post kind, and field-level problems."""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway import AccountRef, FieldProblem, PostKind, PublishRequest

from .const import (
    CAPTION_MAX,
    CAROUSEL_MAX,
    CAROUSEL_MIN,
    FB_MESSAGE_MAX,
    FB_PHOTOS_MAX,
    HASHTAGS_MAX,
    IG_KIND,
    MENTIONS_MAX,
    PAGE_KIND,
    VIDEO_EXTENSIONS,
)

MEDIA_TYPES = ("IMAGE", "CAROUSEL", "REELS", "STORIES")
NOT_JPEG = (".png", ".gif", ".webp", ".bmp", ".heic", ".tif", ".tiff")


def compose_message(request: PublishRequest) -> str | None:
    """The post's text: ``title``, a blank line, ``body``; blank parts are left out."""
    parts = [part for part in (request.title, request.body) if part and part.strip()]
    return "\n\n".join(parts) if parts else None


def is_video(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(VIDEO_EXTENSIONS)


def facebook_kind(request: PublishRequest) -> PostKind:
    media = request.media_urls
    if not media:
        return PostKind.LINK if request.link else PostKind.TEXT
    if len(media) == 1:
        return PostKind.VIDEO if is_video(media[0]) else PostKind.IMAGE
    return PostKind.MULTI_IMAGE


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


def check(request: PublishRequest, account: AccountRef) -> list[FieldProblem]:
    if account.kind == PAGE_KIND:
        return check_facebook(request)
    if account.kind == IG_KIND:
        return check_instagram(request)
    return [FieldProblem("accountId", "unsupported", f"choose a {PAGE_KIND} or {IG_KIND} account")]


def check_facebook(request: PublishRequest) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    message = compose_message(request)
    media = request.media_urls
    if message is None and not media and not request.link:
        problems.append(
            FieldProblem("body", "required", "write a body or title, add a link, or add media")
        )
    if message is not None and len(message) > FB_MESSAGE_MAX:
        problems.append(
            FieldProblem(
                "body",
                "too_long",
                f"title and body are {len(message)} characters; Facebook allows {FB_MESSAGE_MAX}",
            )
        )
    videos = [url for url in media if is_video(url)]
    if videos and len(media) > 1:
        problems.append(
            FieldProblem("mediaUrls", "mixed_media", "a Facebook video post has exactly one video")
        )
    if len(media) > FB_PHOTOS_MAX:
        problems.append(
            FieldProblem(
                "mediaUrls",
                "too_many",
                f"{len(media)} photos given; a Facebook post has at most {FB_PHOTOS_MAX}",
            )
        )
    if media and request.link:
        problems.append(
            FieldProblem("link", "not_with_media", "a Facebook post has a link or media, not both")
        )
    return problems + _unknown_options(request, ())


def check_instagram(request: PublishRequest) -> list[FieldProblem]:
    problems = _unknown_options(request, ("mediaType", "shareToFeed", "altText", "coverUrl"))
    media_type = request.options.get("mediaType")
    if media_type is not None and str(media_type).upper() not in MEDIA_TYPES:
        problems.append(
            FieldProblem(
                "options.meta.mediaType", "invalid", f"use one of {', '.join(MEDIA_TYPES)}"
            )
        )
    media = request.media_urls
    if not media:
        problems.append(
            FieldProblem(
                "mediaUrls", "required", "Instagram posts need an image or a video: add a URL"
            )
        )
    if request.link:
        problems.append(
            FieldProblem(
                "link",
                "unsupported",
                "Instagram posts cannot carry a link; put the URL in the body instead",
            )
        )
    caption = compose_message(request) or ""
    if len(caption) > CAPTION_MAX:
        problems.append(
            FieldProblem(
                "body",
                "too_long",
                f"the caption is {len(caption)} characters; Instagram allows {CAPTION_MAX}",
            )
        )
    words = caption.split()
    hashtags = sum(1 for word in words if word.startswith("#"))
    mentions = sum(1 for word in words if word.startswith("@"))
    if hashtags > HASHTAGS_MAX:
        problems.append(
            FieldProblem(
                "body", "too_many_hashtags", f"{hashtags} hashtags; Instagram allows {HASHTAGS_MAX}"
            )
        )
    if mentions > MENTIONS_MAX:
        problems.append(
            FieldProblem(
                "body", "too_many_mentions", f"{mentions} @-tags; Instagram allows {MENTIONS_MAX}"
            )
        )
    if media:
        problems += _instagram_media(request)
    return problems


def _instagram_media(request: PublishRequest) -> list[FieldProblem]:
    problems = []
    media = request.media_urls
    kind = instagram_kind(request)
    videos = [url for url in media if is_video(url)]
    if kind is PostKind.CAROUSEL and not CAROUSEL_MIN <= len(media) <= CAROUSEL_MAX:
        problems.append(
            FieldProblem(
                "mediaUrls",
                "carousel_size",
                f"a carousel has {CAROUSEL_MIN} to {CAROUSEL_MAX} items; {len(media)} given",
            )
        )
    if kind is PostKind.REEL and (len(media) != 1 or not videos):
        problems.append(
            FieldProblem("mediaUrls", "reel_media", "a reel is exactly one MP4 or MOV video")
        )
    if kind is PostKind.STORY and len(media) != 1:
        problems.append(FieldProblem("mediaUrls", "story_media", "a story is one image or video"))
    for index, url in enumerate(media):
        if urlsplit(url).path.lower().endswith(NOT_JPEG):
            problems.append(
                FieldProblem(
                    f"mediaUrls[{index}]",
                    "unsupported_format",
                    "Instagram publishes JPEG images only; convert it to .jpg",
                )
            )
    return problems


def _unknown_options(request: PublishRequest, known: tuple[str, ...]) -> list[FieldProblem]:
    return [
        FieldProblem(f"options.meta.{name}", "unknown", f"{name} is not a Meta option here")
        for name in request.options
        if name not in known
    ]

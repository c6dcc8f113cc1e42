"""What a post is, told from its request alone: each media URL's type, and the post's kind."""

from __future__ import annotations

from urllib.parse import urlsplit

from .types import PostKind, PublishRequest

# A fixed table rather than the `mimetypes` module: that one reads the machine's
# /etc/mime.types, so the same request could be refused on one host and accepted on another.
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".mp4": "video/mp4",
    ".m4v": "video/x-m4v",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".mkv": "video/x-matroska",
    ".pdf": "application/pdf",
}
# The kinds a request's shape tells apart (media, link, text); the others (a reel, a story, an
# email campaign) need the platform's own reading of the request.
SHAPE_KINDS = frozenset(
    {PostKind.TEXT, PostKind.LINK, PostKind.IMAGE, PostKind.MULTI_IMAGE, PostKind.VIDEO}
)


def media_type_of(url: str) -> str | None:
    """The MIME type a media URL's extension says, or None when it says none we know."""
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return None
    return MEDIA_TYPES.get(path[dot:])


def is_video(url: str) -> bool:
    return (media_type_of(url) or "").startswith("video/")


def shape_kind(request: PublishRequest) -> PostKind:
    """The kind of post the request's shape makes: text, link, one image or video, or several."""
    media = request.media_urls
    if not media:
        return PostKind.LINK if request.link else PostKind.TEXT
    if len(media) == 1:
        return PostKind.VIDEO if is_video(media[0]) else PostKind.IMAGE
    return PostKind.MULTI_IMAGE

"""What the emulated Pages and Instagram accounts hold: posts, photos, videos, containers, media.

Instagram containers follow the documented state machine on the sandbox clock: images are
``FINISHED`` at once, videos after ``VIDEO_PROCESSING_SECONDS``, a media URL that cannot be
fetched ends in ``ERROR`` (9004/2207052), an unpublished container is ``EXPIRED`` after 24 h and
``PUBLISHED`` once ``media_publish`` made it live.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway import sandbox

from .sandbox_graph import GraphError, new_id

VIDEO_PROCESSING_SECONDS = 30.0
CONTAINER_TTL = 86400.0
QUOTA_WINDOW = 86400.0
CONTAINERS_PER_DAY = 400
CAPTION_MAX = 2200
HASHTAGS_MAX = 30
CAROUSEL_MIN, CAROUSEL_MAX = 2, 10
# Hosts Meta's fetcher cannot reach: a way for tests to make a container fail.
UNREACHABLE_SUFFIXES = (".invalid", ".unreachable.test")
IMAGE_TYPES = (".jpg", ".jpeg")
NOT_JPEG = (".png", ".gif", ".webp", ".bmp", ".heic")


def unreachable(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return any(host.endswith(suffix) for suffix in UNREACHABLE_SUFFIXES)


def figure(seed: str, salt: str, low: int, high: int) -> int:
    """A stable pseudo-random count for an object (insights that do not change between reads)."""
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return low + int.from_bytes(digest[:4], "big") % (high - low + 1)


@dataclass(slots=True)
class FacebookObject:
    """A Page post, photo or video."""

    id: str
    page_id: str
    kind: str  # post | photo | video
    created_at: float
    message: str | None = None
    link: str | None = None
    url: str | None = None
    published: bool = True
    scheduled_for: float | None = None
    attached: list[str] = field(default_factory=list)
    post_id: str | None = None  # a published photo's or video's feed post
    deleted: bool = False

    def is_published(self, now: float) -> bool:
        """Scheduled posts go live at their time on the sandbox clock."""
        return self.published or (self.scheduled_for is not None and now >= self.scheduled_for)

    @property
    def permalink(self) -> str:
        if self.kind == "video":
            return f"https://www.facebook.com/{self.page_id}/videos/{self.id}"
        return f"https://www.facebook.com/{self.post_id or self.id}"

    def as_state(self, now: float) -> dict[str, Any]:
        return {
            "platform": "facebook",
            "id": self.id,
            "kind": self.kind,
            "pageId": self.page_id,
            "message": self.message,
            "link": self.link,
            "url": self.url,
            "published": self.is_published(now),
            "scheduledFor": sandbox.rfc3339(self.scheduled_for) if self.scheduled_for else None,
            "attachedMedia": list(self.attached),
            "postId": self.post_id,
            "permalink": self.permalink,
            "createdTime": sandbox.rfc3339(self.created_at),
            "deleted": self.deleted,
        }


@dataclass(slots=True)
class Container:
    """An Instagram media container, before and after publishing."""

    id: str
    ig_user: str
    media_type: str  # IMAGE | VIDEO | REELS | STORIES | CAROUSEL
    created_at: float
    image_url: str | None = None
    video_url: str | None = None
    caption: str | None = None
    children: list[str] = field(default_factory=list)
    is_carousel_item: bool = False
    ready_at: float = 0.0
    error: str | None = None
    media_id: str | None = None

    def status_code(self, now: float) -> str:
        if self.media_id is not None:
            return "PUBLISHED"
        if self.error is not None:
            return "ERROR"
        if now >= self.created_at + CONTAINER_TTL:
            return "EXPIRED"
        if now < self.ready_at:
            return "IN_PROGRESS"
        return "FINISHED"

    def status_text(self, now: float) -> str:
        code = self.status_code(now)
        return {
            "PUBLISHED": "Published: Media has been published.",
            "ERROR": f"Error: {self.error}",
            "EXPIRED": "Expired: The container was not published within 24 hours.",
            "IN_PROGRESS": "In Progress: Media is still being processed.",
            "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
        }[code]


@dataclass(slots=True)
class Media:
    """A published Instagram media object."""

    id: str
    ig_user: str
    container: Container
    created_at: float
    deleted: bool = False

    @property
    def product_type(self) -> str:
        return {"REELS": "REELS", "STORIES": "STORY"}.get(self.container.media_type, "FEED")

    @property
    def media_type(self) -> str:
        kind = self.container.media_type
        if kind == "CAROUSEL":
            return "CAROUSEL_ALBUM"
        return "VIDEO" if kind in ("REELS", "VIDEO") or self.container.video_url else "IMAGE"

    @property
    def shortcode(self) -> str:
        return hashlib.sha256(self.id.encode()).hexdigest()[:11]

    @property
    def permalink(self) -> str:
        section = "reel" if self.product_type == "REELS" else "p"
        if self.product_type == "STORY":
            return f"https://www.instagram.com/stories/{self.ig_user}/{self.id}/"
        return f"https://www.instagram.com/{section}/{self.shortcode}/"

    def fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "caption": self.container.caption,
            "media_type": self.media_type,
            "media_product_type": self.product_type,
            "permalink": self.permalink,
            "shortcode": self.shortcode,
            "timestamp": sandbox.rfc3339(self.created_at).replace("Z", "+0000"),
            "like_count": figure(self.id, "likes", 0, 500),
            "comments_count": figure(self.id, "comments", 0, 80),
        }

    def as_state(self, containers: dict[str, Container]) -> dict[str, Any]:
        children = [containers[c] for c in self.container.children if c in containers]
        return {
            "platform": "instagram",
            "id": self.id,
            "igUserId": self.ig_user,
            "containerId": self.container.id,
            "mediaType": self.container.media_type,
            "mediaProductType": self.product_type,
            "caption": self.container.caption,
            "imageUrl": self.container.image_url,
            "videoUrl": self.container.video_url,
            "children": [c.image_url or c.video_url for c in children],
            "permalink": self.permalink,
            "createdTime": sandbox.rfc3339(self.created_at),
            "deleted": self.deleted,
        }


class ContentStore:
    """Every object made since the last reset."""

    def __init__(self) -> None:
        self.facebook: dict[str, FacebookObject] = {}
        self.containers: dict[str, Container] = {}
        self.media: dict[str, Media] = {}
        self.counter = 0

    def next_post_id(self, page_id: str) -> str:
        self.counter += 1
        return f"{page_id}_{self.counter:015d}"

    def new_container(self, ig_user: str, params: sandbox.RequestParams, now: float) -> Container:
        """Validate ``POST /{ig-user-id}/media`` and create the container it describes."""
        made = sum(
            1
            for c in self.containers.values()
            if c.ig_user == ig_user and c.created_at > now - QUOTA_WINDOW
        )
        if made >= CONTAINERS_PER_DAY:
            raise GraphError(
                4,
                "(#4) Application request limit reached: 400 containers per 24 hours",
                subcode=2207051,
                is_transient=True,
            )
        media_type = (params.get("media_type") or "IMAGE").upper()
        if media_type not in ("IMAGE", "VIDEO", "REELS", "STORIES", "CAROUSEL"):
            raise GraphError(100, "The media type is not supported.", subcode=2207023)
        carousel_item = params.flag("is_carousel_item", False)
        caption = params.get("caption")
        if caption is not None and carousel_item:
            raise GraphError(100, "(#100) Carousel items cannot have a caption")
        if caption is not None:
            check_caption(caption)
        image, video = params.get("image_url"), params.get("video_url")
        container = Container(new_id(), ig_user, media_type, now, caption=caption)
        container.is_carousel_item = carousel_item
        if media_type == "CAROUSEL":
            # A comma list, or a JSON array as Meta's SDK sends list parameters.
            children = params.list_of("children") or []
            if not CAROUSEL_MIN <= len(children) <= CAROUSEL_MAX:
                raise GraphError(
                    100,
                    "The carousel must have between 2 and 10 items.",
                    subcode=2207028,
                    user_title="Invalid number of carousel items",
                )
            for child in children:
                item = self.containers.get(child)
                if item is None or item.ig_user != ig_user or not item.is_carousel_item:
                    raise GraphError(100, f"(#100) {child} is not a carousel item container")
                if item.status_code(now) == "ERROR":
                    container.error = f"Carousel item {child} failed: {item.error}"
            container.children = children
            container.ready_at = max(self.containers[c].ready_at for c in children)
        elif media_type == "VIDEO" and not carousel_item:
            # Since 2023 single feed videos are reels.
            raise GraphError(
                100,
                "The VIDEO media type is only for carousel items; publish videos as REELS.",
                subcode=2207023,
            )
        else:
            wants_video = media_type in ("VIDEO", "REELS") or (media_type == "STORIES" and video)
            url = video if wants_video else image
            name = "video_url" if wants_video else "image_url"
            if not url:
                raise GraphError(100, f"(#100) The parameter {name} is required")
            container.video_url, container.image_url = (url, None) if wants_video else (None, url)
            path = urlsplit(url).path.lower()
            if not wants_video and path.endswith(NOT_JPEG):
                raise GraphError(
                    36001,
                    "The image format is not supported.",
                    subcode=2207005,
                    user_title="Unsupported image format",
                    user_msg="Only JPEG images can be published.",
                )
            container.ready_at = now + (VIDEO_PROCESSING_SECONDS if wants_video else 0.0)
            if unreachable(url):
                container.error = "2207052: The media could not be fetched from the URI."
        self.containers[container.id] = container
        return container

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        facebook = [obj.as_state(now) for obj in self.facebook.values()]
        media = [m.as_state(self.containers) for m in self.media.values()]
        return facebook + media


def check_caption(caption: str) -> None:
    hashtags = sum(1 for word in caption.split() if word.startswith("#"))
    if len(caption) > CAPTION_MAX or hashtags > HASHTAGS_MAX:
        raise GraphError(
            36004,
            "The caption is too long.",
            subcode=2207010,
            user_title="Caption too long",
            user_msg="Captions have at most 2,200 characters, 30 hashtags and 20 @-tags.",
        )

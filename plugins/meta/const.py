"""Meta's facts the connector relies on: hosts, API version, permissions, account kinds, limits."""

from __future__ import annotations

from datetime import timedelta

GRAPH_HOST = "graph.facebook.com"
VIDEO_HOST = "graph-video.facebook.com"
WWW_HOST = "www.facebook.com"
HOSTS = (GRAPH_HOST, VIDEO_HOST, WWW_HOST)
GRAPH = f"https://{GRAPH_HOST}"
GRAPH_VIDEO = f"https://{VIDEO_HOST}"
# Versions live about two years; the setting `api_version` picks one (A0 of the reference).
DEFAULT_VERSION = "v25.0"

PAGE_KIND = "facebook_page"
IG_KIND = "instagram_business"

# Page publishing, Page insights, Instagram publishing and insights (A1 of the reference).
SCOPES = (
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_posts",
    "read_insights",
    "publish_video",
    "instagram_basic",
    "instagram_content_publish",
    "instagram_manage_insights",
    "instagram_manage_contents",
)
# Without these no account can be listed or published to; the others narrow what works.
REQUIRED_SCOPES = (
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_posts",
    "instagram_basic",
    "instagram_content_publish",
)

# Instagram (A4 of the reference): caption 2,200 characters, 30 hashtags, 20 @-tags; JPEG
# images, MOV/MP4 video; a carousel has 2 to 10 items.
CAPTION_MAX = 2200
HASHTAGS_MAX = 30
MENTIONS_MAX = 20
CAROUSEL_MIN, CAROUSEL_MAX = 2, 10
IG_MEDIA_TYPES = ("image/jpeg", "video/mp4", "video/quicktime")
FB_MESSAGE_MAX = 63206  # Facebook's post text limit
FB_PHOTOS_MAX = 10  # photos attached to one feed post
IG_PUBLISH_QUOTA = 50  # per rolling 24 h; read live from content_publishing_limit
WEB = "https://www.facebook.com"
# How far back a post is looked for after an unknown outcome: from when its job was queued
# (every attempt came later; a job replayed from the DLQ days later still finds its post),
# less CLOCK_SKEW. Only a request that does not say when it was queued is looked for this
# many hours back. Meta has no idempotency key, so text and shape since then are all there is.
LOOKBACK_HOURS = 6
# Clocks differ: a lost post is looked for from a little before its job (or container).
CLOCK_SKEW = timedelta(minutes=5)
# Listings are read 100 rows a page, at most this many pages; past it the look cannot tell.
LOOKUP_PAGE_SIZE = 100
LOOKUP_MAX_PAGES = 5

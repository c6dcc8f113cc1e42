"""Checks before queueing: field-level problems that say what to change, without the network.

Each request goes through everything submit asks: Meta's declarations (limits per account
kind, post kinds, the options schema), which the core enforces, then Meta's own check.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway import AccountRef, PostKind, PublishRequest
from gateway.jobs.declared import refusals
from plugins.meta.checks import facebook_kind, instagram_kind
from plugins.meta.connector import MetaConnector

META = MetaConnector(SimpleNamespace(http=None, log=None))

PAGE = AccountRef(id="acct_1", kind="facebook_page", external_id="1", name="Page")
IG = AccountRef(id="acct_2", kind="instagram_business", external_id="2", name="ig")
JPG, MP4 = "https://cdn.example.com/a.jpg", "https://cdn.example.com/v.mp4"


def problems(account, **fields) -> set[tuple[str, str]]:
    return {(p.field, p.code) for p in refusals(META, PublishRequest(**fields), account)}


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"body": "x"}, PostKind.TEXT),
        ({"body": "x", "link": "https://e.com"}, PostKind.LINK),
        ({"media_urls": (JPG,)}, PostKind.IMAGE),
        ({"media_urls": (JPG, JPG)}, PostKind.MULTI_IMAGE),
        ({"media_urls": (MP4,)}, PostKind.VIDEO),
    ],
)
def test_facebook_kinds(fields, kind):
    assert facebook_kind(PublishRequest(**fields)) is kind
    assert problems(PAGE, **fields) == set()


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"media_urls": (JPG,)}, PostKind.IMAGE),
        ({"media_urls": (JPG, MP4)}, PostKind.CAROUSEL),
        ({"media_urls": (MP4,)}, PostKind.REEL),
        ({"media_urls": (MP4,), "options": {"mediaType": "REELS"}}, PostKind.REEL),
        ({"media_urls": (JPG,), "options": {"mediaType": "STORIES"}}, PostKind.STORY),
    ],
)
def test_instagram_kinds(fields, kind):
    assert instagram_kind(PublishRequest(**fields)) is kind
    assert problems(IG, **fields) == set()


def test_instagram_needs_media_and_takes_no_link():
    assert problems(IG, body="x", link="https://e.com") == {
        ("mediaUrls", "required"),
        ("link", "unsupported"),
    }


def test_instagram_caption_limits():
    assert problems(IG, body="x" * 2201, media_urls=(JPG,)) == {("body", "too_long")}
    tags = " ".join(f"#t{n}" for n in range(31))
    assert problems(IG, body=tags, media_urls=(JPG,)) == {("body", "too_many_hashtags")}
    mentions = " ".join(f"@u{n}" for n in range(21))
    assert problems(IG, body=mentions, media_urls=(JPG,)) == {("body", "too_many_mentions")}
    assert problems(IG, body=" ".join(f"#t{n}" for n in range(30)), media_urls=(JPG,)) == set()


def test_instagram_media_rules():
    assert problems(IG, media_urls=(JPG,) * 11) == {("mediaUrls", "too_many")}
    assert problems(IG, media_urls=(JPG,), options={"mediaType": "CAROUSEL"}) == {
        ("mediaUrls", "carousel_size")
    }
    assert problems(IG, media_urls=(JPG,), options={"mediaType": "REELS"}) == {
        ("mediaUrls", "reel_media")
    }
    assert problems(IG, media_urls=(JPG, JPG), options={"mediaType": "STORIES"}) == {
        ("mediaUrls", "story_media")
    }
    assert problems(IG, media_urls=(JPG, "https://cdn.example.com/a.png")) == {
        ("mediaUrls.1", "unsupported_format")
    }
    # A URL whose extension says nothing is left to Meta (the media is not fetched here).
    assert problems(IG, media_urls=("https://cdn.example.com/media?id=7",)) == set()
    assert problems(IG, media_urls=(JPG,), options={"mediaType": "GIF"}) == {
        ("options.meta.mediaType", "enum")
    }
    assert problems(IG, media_urls=(MP4,), options={"shareToFeed": "yes"}) == {
        ("options.meta.shareToFeed", "type")
    }
    assert problems(IG, media_urls=(JPG,), options={"colour": "red"}) == {
        ("options.meta.colour", "unknown")
    }


def test_facebook_rules():
    assert problems(PAGE) == {("body", "required")}
    assert problems(PAGE, media_urls=(MP4, JPG)) == {("mediaUrls", "mixed_media")}
    assert problems(PAGE, media_urls=(JPG,) * 11) == {("mediaUrls", "too_many")}
    assert problems(PAGE, media_urls=(JPG,), link="https://e.com") == {("link", "not_with_media")}
    assert problems(PAGE, body="x" * 63207) == {("body", "too_long")}
    # Facebook takes PNGs, and any number of hashtags: Instagram's limits are not its own.
    tags = " ".join(f"#t{n}" for n in range(31))
    assert problems(PAGE, body=tags, media_urls=("https://cdn.example.com/a.png",)) == set()
    # Meta's options are Instagram's: a Page takes none, though the schema knows them.
    assert problems(PAGE, body="x", options={"altText": "a"}) == {
        ("options.meta.altText", "unknown")
    }


def test_captions_are_limited_per_account_kind():
    text = "x" * 3000
    assert problems(PAGE, body=text) == set()
    assert problems(IG, body=text, media_urls=(JPG,)) == {("body", "too_long")}
    # The limit counts the text as published: title, a blank line, body.
    assert problems(IG, title="x" * 1100, body="y" * 1099, media_urls=(JPG,)) == {
        ("body", "too_long")
    }
    assert problems(IG, title="x" * 1100, body="y" * 1098, media_urls=(JPG,)) == set()


def test_other_account_kinds_are_refused():
    other = AccountRef(id="a", kind="linkedin_person", external_id="1", name="x")
    assert problems(other, body="x") == {("accountId", "unsupported")}

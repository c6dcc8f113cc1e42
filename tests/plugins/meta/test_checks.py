"""Checks before queueing: field-level problems that say what to change, without the network."""

from __future__ import annotations

import pytest

from gateway import AccountRef, PostKind, PublishRequest
from plugins.meta.checks import check, facebook_kind, instagram_kind

PAGE = AccountRef(id="acct_1", kind="facebook_page", external_id="1", name="Page")
IG = AccountRef(id="acct_2", kind="instagram_business", external_id="2", name="ig")
JPG, MP4 = "https://cdn.example.com/a.jpg", "https://cdn.example.com/v.mp4"


def problems(account, **fields) -> set[tuple[str, str]]:
    return {(p.field, p.code) for p in check(PublishRequest(**fields), account)}


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
    assert problems(IG, media_urls=(JPG,) * 11) == {("mediaUrls", "carousel_size")}
    assert problems(IG, media_urls=(JPG,), options={"mediaType": "CAROUSEL"}) == {
        ("mediaUrls", "carousel_size")
    }
    assert problems(IG, media_urls=(JPG,), options={"mediaType": "REELS"}) == {
        ("mediaUrls", "reel_media")
    }
    assert problems(IG, media_urls=(JPG, JPG), options={"mediaType": "STORIES"}) == {
        ("mediaUrls", "story_media")
    }
    assert problems(IG, media_urls=("https://cdn.example.com/a.png",)) == {
        ("mediaUrls[0]", "unsupported_format")
    }
    assert problems(IG, media_urls=(JPG,), options={"mediaType": "GIF"}) == {
        ("options.meta.mediaType", "invalid")
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


def test_other_account_kinds_are_refused():
    other = AccountRef(id="a", kind="linkedin_person", external_id="1", name="x")
    assert problems(other, body="x") == {("accountId", "unsupported")}

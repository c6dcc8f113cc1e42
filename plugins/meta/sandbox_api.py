"""The Graph API's routes in the emulator: one dispatcher over ``/{version}/{object}/{edge}``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway import sandbox

from . import sandbox_listings as listings
from .sandbox_content import QUOTA_WINDOW, FacebookObject, Media, unreachable
from .sandbox_graph import (
    APP_ID,
    APP_NAME,
    APP_SECRET,
    GraphError,
    fb_time,
    new_id,
)
from .sandbox_insights import facebook_counts, facebook_insights, instagram_insights

if TYPE_CHECKING:
    from .sandbox import Caller, MetaSandbox, Page

_VERSION = re.compile(r"^v\d+\.\d+$")
SCHEDULE_MIN, SCHEDULE_MAX = 600, 30 * 86400
PAGE_SIZE = 25


def _missing(object_id: str) -> GraphError:
    return GraphError(
        100,
        f"(#100) Object with ID '{object_id}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation",
        subcode=33,
    )


def _fields(params: sandbox.RequestParams, default: str) -> set[str]:
    # Nested field expansions (``reactions.summary(true)``) count by their first name.
    return {re.split(r"[.{(]", f)[0] for f in (params.get("fields") or default).split(",") if f}


class GraphApi:
    def __init__(self, owner: MetaSandbox) -> None:
        self.owner = owner

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        headers: dict[str, str] = {}
        try:
            segments = [s for s in request.match_info["path"].split("/") if s]
            if segments and _VERSION.match(segments[0]):
                segments = segments[1:]
            params = await sandbox.read_params(request)
            if segments == ["oauth", "access_token"] and request.method in ("GET", "POST"):
                return self.owner.token_endpoint(params)
            if segments == ["debug_token"] and request.method == "GET":
                return self.debug_token(params)
            caller = await self.owner.caller(request, params)
            if not segments:
                raise GraphError(100, "(#100) Unsupported request")
            if segments[0] == "me":
                segments[0] = caller.page or self.owner.user_id(caller.user)
            target, edge = segments[0], "/".join(segments[1:])
            headers = self.owner.meter(caller, *self._business_object(target))
            answer = await self.route(request.method, caller, target, edge, params)
            return web.json_response(answer, headers=headers)
        except sandbox.ParamError as exc:
            # A parameter Graph cannot read (bad JSON, a non-boolean flag) is code 100.
            return GraphError(100, f"(#100) {exc.message}", headers=headers).response()
        except GraphError as exc:
            exc.headers = {**headers, **exc.headers}
            return exc.response()

    def _business_object(self, target: str) -> tuple[str | None, str]:
        """The Page or Instagram account a call is counted against, and its usage type."""
        content = self.owner.content
        if (page := self.owner.ig_owner(target)) is not None:
            return page.ig_id, "instagram"
        if target in content.containers:
            return content.containers[target].ig_user, "instagram"
        if target in content.media:
            return content.media[target].ig_user, "instagram"
        if target in content.facebook:
            return content.facebook[target].page_id, "pages"
        return (target if target in self.owner.pages else None), "pages"

    async def route(
        self, method: str, caller: Caller, target: str, edge: str, params: sandbox.RequestParams
    ) -> Any:
        owner = self.owner
        user_id = owner.user_id(caller.user)
        if target == user_id:
            return self.user_edge(method, caller, edge, params)
        if (page := owner.pages.get(target)) is not None:
            return self.page_edge(method, caller, page, edge, params)
        if (page := owner.ig_owner(target)) is not None:
            return self.ig_edge(method, caller, page, edge, params)
        if (container := owner.content.containers.get(target)) is not None and not edge:
            self._own_ig(caller, container.ig_user)
            caller.require("instagram_basic")
            now = owner.clock.timestamp()
            return {
                "id": container.id,
                "status_code": container.status_code(now),
                "status": container.status_text(now),
            }
        if (media := owner.content.media.get(target)) is not None and not media.deleted:
            return self.media_edge(method, caller, media, edge, params)
        if (post := owner.content.facebook.get(target)) is not None and not post.deleted:
            return self.post_edge(method, caller, post, edge, params)
        raise _missing(target)

    # -- the user ---------------------------------------------------------------------------

    def user_edge(
        self, method: str, caller: Caller, edge: str, params: sandbox.RequestParams
    ) -> Any:
        owner = self.owner
        if method == "GET" and edge == "":
            return {"id": owner.user_id(caller.user), "name": owner.users[caller.user]}
        if method == "GET" and edge == "accounts":
            caller.require("pages_show_list")
            return self.accounts(caller, params)
        if edge == "permissions" and method == "GET":
            return {"data": [{"permission": p, "status": "granted"} for p in caller.token.scopes]}
        if edge == "permissions" and method == "DELETE":
            owner.tokens.revoke_subject(caller.user)
            return {"success": True}
        if edge.startswith("permissions/") and method == "DELETE":
            removed = edge.split("/", 1)[1]
            for token in owner.tokens.of_subject(caller.user):
                token.scopes = tuple(s for s in token.scopes if s != removed)
            return {"success": True}
        raise GraphError(100, f"(#100) Unsupported {method} request on /me/{edge}")

    def accounts(self, caller: Caller, params: sandbox.RequestParams) -> dict[str, Any]:
        fields = _fields(params, "id,name,access_token")
        pages = self.owner.pages_of(caller.user)
        start = int(params.get("after") or 0)
        limit = min(int(params.get("limit") or PAGE_SIZE), 100)
        chunk = pages[start : start + limit]
        data = [self._page_fields(caller, page, fields) for page in chunk]
        paging: dict[str, Any] = {
            "cursors": {"before": str(start), "after": str(start + len(chunk))}
        }
        if start + limit < len(pages):
            paging["next"] = (
                f"https://graph.facebook.com/me/accounts?after={start + limit}&limit={limit}"
                f"&fields={params.get('fields', '')}"
            )
        return {"data": data, "paging": paging}

    def _page_fields(self, caller: Caller, page: Page, fields: set[str]) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": page.id}
        if "name" in fields:
            answer["name"] = page.name
        if "category" in fields:
            answer["category"] = "Brand"
        if "tasks" in fields:
            answer["tasks"] = ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE"]
        if "access_token" in fields and caller.page is None:
            answer["access_token"] = self.owner.page_token(caller.token, page)
        if "instagram_business_account" in fields and page.ig_id:
            answer["instagram_business_account"] = {"id": page.ig_id}
        return answer

    # -- Pages ------------------------------------------------------------------------------

    def page_edge(
        self, method: str, caller: Caller, page: Page, edge: str, params: sandbox.RequestParams
    ) -> Any:
        if page.owner != caller.user or (caller.page not in (None, page.id)):
            raise _missing(page.id)
        if method == "GET" and edge == "":
            caller.require("pages_show_list")
            return self._page_fields(caller, page, _fields(params, "id,name"))
        if method == "GET" and edge in ("feed", "scheduled_posts"):
            return self.page_list(caller, page, edge, params)
        if method != "POST" or edge not in ("feed", "photos", "videos"):
            raise GraphError(100, f"(#100) Unsupported {method} request on /{page.id}/{edge}")
        if caller.page is None:
            raise GraphError(
                200,
                "(#200) Publishing to a Page requires a Page access token",
                status=403,
            )
        caller.require("pages_manage_posts", "pages_read_engagement")
        now = self.owner.clock.timestamp()
        store = self.owner.content
        if edge == "feed":
            return self.feed(page, params, now)
        if edge == "photos":
            url = params.get("url")
            if not url:
                raise GraphError(324, "(#324) Requires upload file")
            if unreachable(url):
                raise GraphError(
                    100, "Invalid URL: the photo could not be fetched", subcode=2061006
                )
            published = params.flag("published", True)
            photo = FacebookObject(
                new_id(),
                page.id,
                "photo",
                now,
                message=params.get("message") or params.get("caption"),
                url=url,
                published=published,
            )
            if published:
                photo.post_id = store.next_post_id(page.id)
            store.facebook[photo.id] = photo
            return {"id": photo.id, "post_id": photo.post_id} if published else {"id": photo.id}
        caller.require("publish_video")
        url = params.get("file_url")
        if not url:
            raise GraphError(100, "(#100) file_url or an upload session is required")
        video = FacebookObject(
            new_id(), page.id, "video", now, message=params.get("description"), url=url
        )
        video.post_id = store.next_post_id(page.id)
        store.facebook[video.id] = video
        return {"id": video.id}

    def page_list(
        self, caller: Caller, page: Page, edge: str, params: sandbox.RequestParams
    ) -> dict[str, Any]:
        caller.require("pages_read_engagement")
        now, store = self.owner.clock.timestamp(), self.owner.content
        fields = _fields(params, "id,created_time,message")
        if edge == "feed":
            return listings.feed(store, page.id, params, now, fields)
        if caller.page is None:
            raise GraphError(200, "(#200) Scheduled posts need the Page's access token", status=403)
        return listings.scheduled_posts(store, page.id, params, now, fields)

    def feed(self, page: Page, params: sandbox.RequestParams, now: float) -> dict[str, Any]:
        store = self.owner.content
        attached = params.json_of("attached_media") or []
        if not isinstance(attached, list):
            raise GraphError(100, "(#100) attached_media must be an array")
        media_ids = []
        for item in attached:
            fbid = str(item.get("media_fbid")) if isinstance(item, dict) else ""
            photo = store.facebook.get(fbid)
            if (
                photo is None
                or photo.page_id != page.id
                or photo.kind != "photo"
                or photo.published
            ):
                raise GraphError(100, f"(#100) media_fbid {fbid} is not an unpublished photo")
            media_ids.append(fbid)
        message, link = params.get("message"), params.get("link")
        if not (message or link or media_ids):
            raise GraphError(100, "(#100) Missing message or attachment")
        published = params.flag("published", True)
        scheduled = params.get("scheduled_publish_time")
        if scheduled is not None:
            when = float(scheduled) if scheduled.isdigit() else None
            if published or when is None or not SCHEDULE_MIN <= when - now <= SCHEDULE_MAX:
                raise GraphError(100, "(#100) The specified scheduled publish time is invalid.")
        post_id = store.next_post_id(page.id)
        post = FacebookObject(
            post_id,
            page.id,
            "post",
            now,
            message=message,
            link=link,
            published=published,
            attached=media_ids,
            scheduled_for=float(scheduled) if scheduled else None,
        )
        store.facebook[post_id] = post
        for fbid in media_ids:
            store.facebook[fbid].post_id = post_id
        answer: dict[str, Any] = {"id": post_id}
        if "permalink_url" in _fields(params, "id"):
            answer["permalink_url"] = post.permalink
        return answer

    def post_edge(
        self,
        method: str,
        caller: Caller,
        post: FacebookObject,
        edge: str,
        params: sandbox.RequestParams,
    ) -> Any:
        page = self.owner.pages[post.page_id]
        if page.owner != caller.user:
            raise _missing(post.id)
        if method == "DELETE" and edge == "":
            if caller.page != page.id:
                raise GraphError(
                    200, "(#200) Deleting requires the Page's access token", status=403
                )
            caller.require("pages_manage_posts")
            post.deleted = True
            return {"success": True}
        if method == "GET" and edge == "":
            caller.require("pages_read_engagement")
            fields = _fields(params, "id,created_time,message")
            answer: dict[str, Any] = {"id": post.id}
            if "message" in fields and post.message:
                answer["message"] = post.message
            if "created_time" in fields:
                answer["created_time"] = fb_time(post.created_at)
            if "permalink_url" in fields:
                answer["permalink_url"] = post.permalink
            if "is_published" in fields:
                answer["is_published"] = post.is_published(self.owner.clock.timestamp())
            if "scheduled_publish_time" in fields and post.scheduled_for:
                answer["scheduled_publish_time"] = int(post.scheduled_for)
            if "status" in fields and post.kind == "video":
                answer["status"] = {"video_status": "ready"}
            counts = facebook_counts(post)
            answer.update({k: v for k, v in counts.items() if k in fields})
            return answer
        if method == "GET" and edge == "insights":
            caller.require("read_insights", "pages_read_engagement")
            return facebook_insights(post, params)
        raise GraphError(100, f"(#100) Unsupported {method} request on /{post.id}/{edge}")

    # -- Instagram --------------------------------------------------------------------------

    def _own_ig(self, caller: Caller, ig_id: str) -> Page:
        page = self.owner.ig_owner(ig_id)
        if page is None or page.owner != caller.user or caller.page not in (None, page.id):
            raise _missing(ig_id)
        return page

    def ig_edge(
        self, method: str, caller: Caller, page: Page, edge: str, params: sandbox.RequestParams
    ) -> Any:
        ig_id = page.ig_id or ""
        self._own_ig(caller, ig_id)
        caller.require("instagram_basic")
        content = self.owner.content
        now = self.owner.clock.timestamp()
        if method == "GET" and edge == "":
            return {
                "id": ig_id,
                "username": page.ig_username,
                "name": page.name,
                "followers_count": 1200,
                "media_count": sum(1 for m in content.media.values() if m.ig_user == ig_id),
            }
        if method == "GET" and edge == "content_publishing_limit":
            return {
                "data": [
                    {
                        "quota_usage": len(self._recent_publishes(ig_id, now)),
                        "config": {
                            "quota_total": self.owner.publish_quota,
                            "quota_duration": 86400,
                        },
                    }
                ]
            }
        if method == "GET" and edge == "media":
            fields = _fields(params, "id")
            return listings.ig_media(content, ig_id, params, fields)
        if method == "POST" and edge == "media":
            caller.require("instagram_content_publish")
            return {"id": content.new_container(ig_id, params, now).id}
        if method == "POST" and edge == "media_publish":
            caller.require("instagram_content_publish")
            return self.media_publish(ig_id, params, now)
        raise GraphError(100, f"(#100) Unsupported {method} request on /{ig_id}/{edge}")

    def _recent_publishes(self, ig_id: str, now: float) -> list[float]:
        kept = [t for t in self.owner.publishes.get(ig_id, []) if t > now - QUOTA_WINDOW]
        self.owner.publishes[ig_id] = kept
        return kept

    def media_publish(
        self, ig_id: str, params: sandbox.RequestParams, now: float
    ) -> dict[str, str]:
        content = self.owner.content
        container = content.containers.get(params.get("creation_id", ""))
        if container is None or container.ig_user != ig_id or container.is_carousel_item:
            raise GraphError(100, "(#100) The parameter creation_id is invalid", subcode=2207006)
        if len(self._recent_publishes(ig_id, now)) >= self.owner.publish_quota:
            raise GraphError(
                9,
                "(#9) Application request limit reached",
                subcode=2207042,
                is_transient=False,
                user_title="Reached the daily publishing limit",
                user_msg="You reached the maximum number of posts allowed in 24 hours.",
            )
        status = container.status_code(now)
        if status == "IN_PROGRESS":
            raise GraphError(
                9007,
                "Media ID is not available",
                subcode=2207027,
                is_transient=False,
                user_title="Media not ready for publishing",
                user_msg="The media is not ready for publishing, please wait for a moment",
            )
        if status == "ERROR":
            raise GraphError(9004, "The media could not be fetched from the URI.", subcode=2207052)
        if status == "EXPIRED":
            raise GraphError(
                -2,
                "The media you are trying to access has expired. Please create a new container.",
                subcode=2207020,
            )
        if status == "PUBLISHED":
            raise GraphError(100, "(#100) This container has already been published")
        media = Media(new_id(), ig_id, container, now)
        container.media_id = media.id
        content.media[media.id] = media
        self.owner.publishes.setdefault(ig_id, []).append(now)
        return {"id": media.id}

    def media_edge(
        self, method: str, caller: Caller, media: Media, edge: str, params: sandbox.RequestParams
    ) -> Any:
        self._own_ig(caller, media.ig_user)
        if method == "GET" and edge == "":
            caller.require("instagram_basic")
            fields = _fields(params, "id,media_type,permalink")
            return {k: v for k, v in media.fields().items() if k in fields or k == "id"}
        if method == "GET" and edge == "insights":
            caller.require("instagram_manage_insights")
            return instagram_insights(media, params)
        if method == "DELETE" and edge == "":
            caller.require("instagram_manage_contents")
            media.deleted = True
            return {"success": True}
        raise GraphError(100, f"(#100) Unsupported {method} request on /{media.id}/{edge}")

    # -- debug_token --------------------------------------------------------------------------

    def debug_token(self, params: sandbox.RequestParams) -> web.Response:
        if params.get("access_token") != f"{APP_ID}|{APP_SECRET}":
            raise GraphError(190, "Invalid OAuth access token - debug_token needs an app token")
        status, token = self.owner.tokens.check(params.get("input_token", ""))
        if token is None:
            raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
        data: dict[str, Any] = {
            "app_id": APP_ID,
            "type": token.extra.get("type", "USER"),
            "application": APP_NAME,
            "expires_at": int(token.expires_at or 0),
            "data_access_expires_at": int(token.issued_at + 90 * 86400),
            "is_valid": status.value == "active",
            "issued_at": int(token.issued_at),
            "scopes": list(token.scopes),
            "granular_scopes": [{"scope": s} for s in token.scopes],
            "user_id": self.owner.user_id(token.subject),
        }
        if token.extra.get("page"):
            data["profile_id"] = token.extra["page"]
        return web.json_response({"data": data})

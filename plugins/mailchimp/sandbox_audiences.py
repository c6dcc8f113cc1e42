"""The Mailchimp sandbox's audiences, members, tags, audience webhooks and batch operations."""

from __future__ import annotations

import io
import json
import re
import tarfile
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from gateway import sandbox

from .sandbox_state import (
    BATCH_SECONDS,
    SUBSCRIBER_STATUSES,
    Account,
    Audience,
    Batch,
    McError,
    Member,
    invalid,
    new_id,
    not_found,
    subscriber_hash,
)

if TYPE_CHECKING:
    from .sandbox import MailchimpSandbox

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
BATCH_MEMBERS_MAX = 500
PENDING_BATCHES_MAX = 500
BATCH_HOST = "mailchimp-api-batch.s3.amazonaws.com"
_VALIDATION_TIMEOUT = aiohttp.ClientTimeout(total=10)
_MEMBER = re.compile(r"^/lists/(?P<list>[^/]+)/members/(?P<hash>[0-9a-f]{32})(?P<tags>/tags)?$")
_MEMBERS = re.compile(r"^/lists/(?P<list>[^/]+)/members$")
_LIST = re.compile(r"^/lists/(?P<list>[^/]+)$")


def rfc3339(timestamp: float) -> str:
    return sandbox.rfc3339(timestamp).replace(".000Z", "+00:00").replace("Z", "+00:00")


def check_email(value: Any, field_name: str = "email_address") -> str:
    if not isinstance(value, str) or not EMAIL.match(value):
        raise invalid(field_name, "Please provide a valid email address.")
    return value


def check_status(value: Any, field_name: str) -> str:
    if value not in SUBSCRIBER_STATUSES:
        raise invalid(field_name, f"{field_name} must be one of {', '.join(SUBSCRIBER_STATUSES)}")
    return value


class AudiencesApi:
    """Handlers for ``/lists/...`` and ``/batches/...``; member operations are shared by the
    handlers and by batch operations, so both refuse the same things."""

    def __init__(self, owner: MailchimpSandbox) -> None:
        self.owner = owner

    @property
    def now(self) -> float:
        return self.owner.clock.timestamp()

    def audience(self, account: Account, list_id: str) -> Audience:
        found = self.owner.audiences.get(list_id)
        if found is None or found.account_id != account.id:
            raise not_found(f"list {list_id}")
        return found

    # -- lists -------------------------------------------------------------------------------

    async def lists(self, request: web.Request, account: Account) -> web.Response:
        owned = [a for a in self.owner.audiences.values() if a.account_id == account.id]
        return web.json_response(
            {"lists": [a.as_api(rfc3339) for a in owned], "total_items": len(owned)}
        )

    async def get_list(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        return web.json_response(found.as_api(rfc3339))

    async def create_list(self, request: web.Request, account: Account) -> web.Response:
        body = await self.owner.body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise invalid("name", "This value should not be blank.")
        defaults = body.get("campaign_defaults") or {}
        if not isinstance(defaults, dict):
            raise invalid("campaign_defaults", "must be an object")
        from_email = defaults.get("from_email", "")
        if from_email:
            check_email(from_email, "campaign_defaults.from_email")
        created = Audience(
            new_id(),
            account.id,
            name,
            str(defaults.get("from_name", "")),
            from_email,
            0,
            self.now,
        )
        self.owner.audiences[created.id] = created
        return web.json_response(created.as_api(rfc3339))

    async def batch_members(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        return web.json_response(self.batch_member_op(found, await self.owner.body(request)))

    # -- members -----------------------------------------------------------------------------

    async def members(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        wanted = request.query.get("status")
        listed = [
            m.as_api(found.id, rfc3339)
            for m in found.members.values()
            if not m.archived and (wanted is None or m.status == wanted)
        ]
        return web.json_response(
            {"members": listed, "list_id": found.id, "total_items": len(listed)}
        )

    async def member(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        status, answer = self.member_op(
            found, request.method, request.match_info["subscriber_hash"], None, False
        )
        return _answer(status, answer)

    async def member_write(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        member_hash = request.match_info["subscriber_hash"]
        body = await self.owner.body(request) if request.method in ("PUT", "PATCH") else None
        before = self._status(found, member_hash)
        status, answer = self.member_op(found, request.method, member_hash, body, False)
        await self.notify(found, member_hash, before)
        return _answer(status, answer)

    async def add_member(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        status, answer = self.add_member_op(found, await self.owner.body(request))
        await self.notify(found, answer["id"], None)
        return _answer(status, answer)

    def _status(self, audience: Audience, member_hash: str) -> str | None:
        member = audience.members.get(member_hash)
        return None if member is None or member.archived else member.status

    async def notify(self, audience: Audience, member_hash: str, before: str | None) -> None:
        """Tell the audience's webhooks that take API-made changes what this change was.

        Delivered before the API call is answered (Mailchimp delivers soon after): a sandbox
        test then sees the event as soon as its call returns. Failed deliveries are not retried.
        """
        member = audience.members.get(member_hash)
        after = None if member is None or member.archived else member.status
        if member is None or after is None or after == "pending":
            return
        if before != "subscribed" and after == "subscribed":
            event = "subscribe"
        elif before == "subscribed" and after == "unsubscribed":
            event = "unsubscribe"
        elif before == after:
            event = "profile"
        else:
            return
        hooks = [
            h
            for h in audience.webhooks.values()
            if h["events"].get(event) and h["sources"].get("api")
        ]
        if not hooks:
            return
        merges = {"EMAIL": member.email, **member.merge_fields}
        data = {"id": member.id[:10], "email": member.email, "merges": merges}
        if event == "unsubscribe":
            data.update(action="unsub", reason="api")
        body, headers = self.owner.build_webhook(
            event, {"list_id": audience.id, "email": member.email, "data": data}
        )
        async with aiohttp.ClientSession(timeout=_VALIDATION_TIMEOUT) as session:
            for hook in hooks:
                try:
                    async with session.post(hook["url"], data=body, headers=headers) as reply:
                        await reply.read()
                except (aiohttp.ClientError, TimeoutError):
                    continue

    async def member_tags(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        member_hash = request.match_info["subscriber_hash"]
        if request.method == "GET":
            member = self._live(found, member_hash)
            tags = [{"name": t} for t in sorted(member.tags)]
            return web.json_response({"tags": tags, "total_items": len(tags)})
        status, answer = self.member_op(
            found, "TAGS", member_hash, await self.owner.body(request), False
        )
        return _answer(status, answer)

    async def delete_permanent(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        self._live(found, request.match_info["subscriber_hash"], archived_ok=True)
        del found.members[request.match_info["subscriber_hash"]]
        return web.Response(status=204)

    def _live(self, audience: Audience, member_hash: str, *, archived_ok: bool = False) -> Member:
        member = audience.members.get(member_hash)
        if member is None or (member.archived and not archived_ok):
            raise not_found(f"member {member_hash} of list {audience.id}")
        return member

    def member_op(
        self, audience: Audience, method: str, member_hash: str, body: Any, batch: bool
    ) -> tuple[int, Any]:
        """GET, PUT (upsert), PATCH, DELETE (archive) or TAGS on one member."""
        now = self.now
        if method == "GET":
            return 200, self._live(audience, member_hash).as_api(audience.id, rfc3339)
        if method == "DELETE":
            member = self._live(audience, member_hash)
            member.archived, member.changed = True, now
            return 204, None
        if method == "TAGS":
            member = self._live(audience, member_hash)
            tags = body.get("tags") if isinstance(body, dict) else None
            if not isinstance(tags, list) or not all(
                isinstance(t, dict) and isinstance(t.get("name"), str) and t["name"] for t in tags
            ):
                raise invalid("tags", "tags must be a list of {name, status} objects")
            for tag in tags:
                if tag.get("status", "active") == "inactive":
                    member.tags.discard(tag["name"])
                else:
                    member.tags.add(tag["name"])
            member.changed = now
            return 204, None
        if not isinstance(body, dict):
            raise McError(
                400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
            )
        existing = audience.members.get(member_hash)
        if method == "PATCH":
            member = self._live(audience, member_hash)
            self._apply(member, body)
            return 200, member.as_api(audience.id, rfc3339)
        # PUT: add or update.
        email = check_email(body.get("email_address"))
        if subscriber_hash(email) != member_hash:
            raise invalid("email_address", "The email address does not match the subscriber hash.")
        if existing is None or existing.archived:
            status = body.get("status_if_new", body.get("status"))
            if status is None:
                raise invalid("status_if_new", "status_if_new is required for a new member")
            check_status(status, "status_if_new")
            member = Member(email, status, {}, set(), now, now)
            audience.members[member_hash] = member
        else:
            member = existing
        self._apply(member, body)
        return 200, member.as_api(audience.id, rfc3339)

    def add_member_op(self, audience: Audience, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise McError(
                400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
            )
        email = check_email(body.get("email_address"))
        check_status(body.get("status"), "status")
        member_hash = subscriber_hash(email)
        existing = audience.members.get(member_hash)
        if existing is not None and not existing.archived:
            raise McError(
                400,
                "Member Exists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        member = Member(email, body["status"], {}, set(), self.now, self.now)
        audience.members[member_hash] = member
        self._apply(member, body)
        return 200, member.as_api(audience.id, rfc3339)

    def _apply(self, member: Member, body: dict[str, Any]) -> None:
        if "status" in body:
            member.status = check_status(body["status"], "status")
        merge_fields = body.get("merge_fields")
        if merge_fields is not None:
            if not isinstance(merge_fields, dict):
                raise invalid("merge_fields", "merge_fields must be an object")
            member.merge_fields.update(merge_fields)
        tags = body.get("tags")
        if tags is not None:
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise invalid("tags", "tags must be a list of names")
            member.tags.update(tags)
        member.archived, member.changed = False, self.now

    def batch_member_op(self, audience: Audience, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /lists/{id}``: subscribe or update up to 500 members at once."""
        members = body.get("members")
        if not isinstance(members, list) or not members:
            raise invalid("members", "members must be a non-empty list")
        if len(members) > BATCH_MEMBERS_MAX:
            raise invalid("members", f"at most {BATCH_MEMBERS_MAX} members per call")
        update = bool(body.get("update_existing", False))
        created, updated, errors = [], [], []
        for item in members:
            email = item.get("email_address") if isinstance(item, dict) else None
            try:
                check_email(email)
                member_hash = subscriber_hash(email)
                existing = audience.members.get(member_hash)
                if existing is not None and not existing.archived:
                    if not update:
                        raise McError(400, "Member Exists", f"{email} is already a list member")
                    self._apply(existing, item)
                    updated.append(existing.as_api(audience.id, rfc3339))
                else:
                    status = check_status(item.get("status"), "status")
                    member = Member(email, status, {}, set(), self.now, self.now)
                    audience.members[member_hash] = member
                    self._apply(member, item)
                    created.append(member.as_api(audience.id, rfc3339))
            except McError as exc:
                code = "ERROR_CONTACT_EXISTS" if exc.title == "Member Exists" else "ERROR_GENERIC"
                message = exc.errors[0]["message"] if exc.errors else exc.detail
                errors.append({"email_address": email, "error": message, "error_code": code})
        return {
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "total_created": len(created),
            "total_updated": len(updated),
            "error_count": len(errors),
        }

    # -- audience webhooks -------------------------------------------------------------------

    async def webhooks(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        hooks = list(found.webhooks.values())
        return web.json_response(
            {"webhooks": hooks, "list_id": found.id, "total_items": len(hooks)}
        )

    async def create_webhook(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        body = await self.owner.body(request)
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid("url", "This value should be a valid URL.")
        # Mailchimp checks the URL when the webhook is created: a GET that must answer 200.
        try:
            async with (
                aiohttp.ClientSession(timeout=_VALIDATION_TIMEOUT) as session,
                session.get(url, headers={"User-Agent": "MailChimp"}) as reply,
            ):
                reachable = reply.status == 200
        except (aiohttp.ClientError, TimeoutError):
            reachable = False
        if not reachable:
            raise invalid("url", "The URL you provided is not valid or did not answer 200.")
        hook = {
            "id": new_id(),
            "url": url,
            "events": body.get("events") or {"subscribe": True, "unsubscribe": True},
            "sources": body.get("sources") or {"user": True, "admin": True, "api": False},
            "list_id": found.id,
        }
        found.webhooks[hook["id"]] = hook
        return web.json_response(hook)

    async def webhook(self, request: web.Request, account: Account) -> web.Response:
        found = self.audience(account, request.match_info["list_id"])
        hook = found.webhooks.get(request.match_info["webhook_id"])
        if hook is None:
            raise not_found(f"webhook {request.match_info['webhook_id']}")
        if request.method == "DELETE":
            del found.webhooks[hook["id"]]
            return web.Response(status=204)
        return web.json_response(hook)

    # -- batches -----------------------------------------------------------------------------

    async def start_batch(self, request: web.Request, account: Account) -> web.Response:
        body = await self.owner.body(request)
        operations = body.get("operations")
        if not isinstance(operations, list) or not operations:
            raise invalid("operations", "operations must be a non-empty list")
        for index, op in enumerate(operations):
            if not (
                isinstance(op, dict)
                and op.get("method") in ("GET", "POST", "PUT", "PATCH", "DELETE")
                and isinstance(op.get("path"), str)
                and isinstance(op.get("body", ""), str)
            ):
                raise invalid(
                    f"operations.{index}", "each operation needs method, path and a string body"
                )
        pending = [
            b
            for b in self.owner.batches.values()
            if b.account_id == account.id and b.status != "finished"
        ]
        if len(pending) >= PENDING_BATCHES_MAX:
            raise McError(429, "Too Many Requests", "You have more than 500 pending batches.")
        batch = Batch(new_id(), account.id, operations, self.now)
        self.owner.batches[batch.id] = batch
        return web.json_response(self.batch_json(batch))

    async def batches(self, request: web.Request, account: Account) -> web.Response:
        owned = [
            self.batch_json(b) for b in self.owner.batches.values() if b.account_id == account.id
        ]
        return web.json_response({"batches": owned, "total_items": len(owned)})

    async def batch(self, request: web.Request, account: Account) -> web.Response:
        found = self.owner.batches.get(request.match_info["batch_id"])
        if found is None or found.account_id != account.id:
            raise not_found(f"batch {request.match_info['batch_id']}")
        if request.method == "DELETE":
            del self.owner.batches[found.id]
            return web.Response(status=204)
        return web.json_response(self.batch_json(found))

    def batch_json(self, batch: Batch) -> dict[str, Any]:
        account = next(a for a in self.owner.accounts if a.id == batch.account_id)
        self.work(batch, account)
        done = batch.status == "finished"
        return {
            "id": batch.id,
            "status": batch.status,
            "total_operations": len(batch.operations),
            "finished_operations": len(batch.results),
            "errored_operations": batch.errored,
            "submitted_at": rfc3339(batch.submitted),
            "completed_at": rfc3339(batch.completed) if batch.completed else "",
            "response_body_url": f"https://{BATCH_HOST}/{batch.id}-response.tar.gz" if done else "",
        }

    def work(self, batch: Batch, account: Account) -> None:
        """Run a batch's operations once its time has come (on the sandbox clock)."""
        if batch.status == "finished":
            return
        if self.now < batch.submitted + BATCH_SECONDS:
            batch.status = "started" if self.now >= batch.submitted + 1 else "pending"
            return
        for op in batch.operations:
            try:
                status, answer = self.batch_op(account, op)
            except McError as exc:
                status, answer = exc.status, exc.document()
            batch.results.append(
                {
                    "status_code": status,
                    "operation_id": op.get("operation_id"),
                    "response": json.dumps(answer) if answer is not None else "",
                }
            )
        batch.status, batch.completed = "finished", self.now

    def batch_op(self, account: Account, op: dict[str, Any]) -> tuple[int, Any]:
        method, path = op["method"], op["path"].rstrip("/")
        try:
            body = json.loads(op["body"]) if op.get("body") else {}
        except ValueError:
            raise McError(
                400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
            ) from None
        if match := _MEMBER.match(path):
            audience = self.audience(account, match["list"])
            verb = "TAGS" if match["tags"] and method == "POST" else method
            return self.member_op(audience, verb, match["hash"], body, True)
        if (match := _MEMBERS.match(path)) and method == "POST":
            return self.add_member_op(self.audience(account, match["list"]), body)
        if (match := _LIST.match(path)) and method == "POST":
            return 200, self.batch_member_op(self.audience(account, match["list"]), body)
        raise not_found(f"the sandbox does not batch {method} {path}")

    async def batch_results(self, request: web.Request) -> web.Response:
        """The finished batch's results, a tar.gz of JSON as on Mailchimp's S3 bucket."""
        batch_id = request.match_info["batch_id"]
        found = self.owner.batches.get(batch_id)
        if found is None or found.status != "finished":
            return web.Response(status=404, text="NoSuchKey")
        data = json.dumps(found.results).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo(f"{batch_id}.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        return web.Response(body=buffer.getvalue(), content_type="application/x-gzip")


def _answer(status: int, body: Any) -> web.Response:
    if status == 204:
        return web.Response(status=204)
    return web.json_response(body, status=status)

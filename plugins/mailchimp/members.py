"""Audience contacts through the Marketing API: upsert by subscriber hash, remove, tag, batch."""

from __future__ import annotations

import hashlib
from typing import Any

from .api import MailchimpApi, Target

STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 hex digest of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def member_json(member: dict[str, Any]) -> dict[str, Any]:
    """A Mailchimp member as the gateway's API shows it (camelCase, fewer fields)."""
    return {
        "id": member.get("id"),
        "email": member.get("email_address"),
        "status": member.get("status"),
        "mergeFields": member.get("merge_fields") or {},
        "tags": sorted(t.get("name") for t in member.get("tags") or [] if t.get("name")),
        "lastChanged": member.get("last_changed") or None,
    }


def member_body(member: dict[str, Any]) -> dict[str, Any]:
    """The gateway's member fields as Mailchimp's."""
    body: dict[str, Any] = {"email_address": member["email"].strip()}
    if "status" in member:
        body["status"] = member["status"]
    body["status_if_new"] = member.get("statusIfNew") or member.get("status") or "subscribed"
    if member.get("mergeFields"):
        body["merge_fields"] = member["mergeFields"]
    if member.get("tags"):
        body["tags"] = list(member["tags"])
    return body


async def upsert(api: MailchimpApi, target: Target, list_id: str, member: dict) -> dict:
    """``PUT /lists/{id}/members/{hash}``: add the contact or update it."""
    path = f"/lists/{list_id}/members/{subscriber_hash(member['email'])}"
    return member_json(await api.call(target, "PUT", path, json=member_body(member)))


async def remove(
    api: MailchimpApi, target: Target, list_id: str, email: str, *, permanent: bool
) -> None:
    """Archive the contact, or with ``permanent`` erase it (it cannot be re-imported then)."""
    path = f"/lists/{list_id}/members/{subscriber_hash(email)}"
    if permanent:
        await api.call(target, "POST", f"{path}/actions/delete-permanent", idempotent=True)
    else:
        await api.call(target, "DELETE", path)


async def tag(
    api: MailchimpApi, target: Target, list_id: str, email: str, add: list, drop: list
) -> dict:
    """Add and remove tags, then answer the member as it now is."""
    path = f"/lists/{list_id}/members/{subscriber_hash(email)}"
    tags = [{"name": n, "status": "active"} for n in add]
    tags += [{"name": n, "status": "inactive"} for n in drop]
    await api.call(target, "POST", f"{path}/tags", json={"tags": tags}, idempotent=True)
    return member_json(await api.call(target, "GET", path))


async def batch(
    api: MailchimpApi, target: Target, list_id: str, members: list[dict], *, update: bool
) -> dict[str, Any]:
    """``POST /lists/{id}``: up to 500 contacts in one call, with a result per contact."""
    body = {
        "members": [
            {
                **{k: v for k, v in member_body(m).items() if k != "status_if_new"},
                "status": m.get("status") or m.get("statusIfNew") or "subscribed",
            }
            for m in members
        ],
        "update_existing": update,
    }
    # Re-sending the same batch converges on the same contacts: safe to retry.
    answer = await api.call(target, "POST", f"/lists/{list_id}", json=body, idempotent=True)
    return {
        "created": [member_json(m) for m in answer.get("new_members") or []],
        "updated": [member_json(m) for m in answer.get("updated_members") or []],
        "errors": [
            {
                "email": e.get("email_address"),
                "code": e.get("error_code"),
                "message": e.get("error"),
            }
            for e in answer.get("errors") or []
        ],
    }

"""Publishing: POST /api/publish, the jobs API, the dead-letter queue, deleting posts."""

from __future__ import annotations

import contextlib

from aiohttp import web

from ...db.base import utcnow
from ...db.jobs import JobRepository
from ...db.models import PublishJobRow
from ...errors import BadRequest, Conflict, NotFound, ResourceNotFound
from ...jobs.claims import REPLAYED_UNCHECKED, replays_without_looking
from ...jobs.submit import submit
from ...jobs.targets import load_target
from ...timefmt import rfc3339
from ..jsonread import parse_json
from ..keys import GATEWAY, principal_of
from ..pagination import after_cursor, cursor_scope, keyset_page
from ..quickcheck import quick_check
from ..spec import (
    CURSOR_PARAM,
    LIMIT_PARAM,
    ApiSpec,
    Schema,
    id_string,
    json_body,
    json_response,
    nullable,
    page_schema,
    path_param,
    problem,
    query_params,
    record,
    validated,
)

TIME = {"type": ["string", "null"]}
PUBLISH_BODY = Schema(
    "Post",
    {
        "type": "object",
        "description": "What to publish, and where (`options.<platform>`: platform settings).",
        "additionalProperties": False,
        "required": ["connectionId", "accountId"],
        "properties": {
            "connectionId": id_string(),
            "accountId": id_string(),
            "title": {"type": "string", "maxLength": 1000},
            "body": {"type": "string", "maxLength": 100_000},
            "mediaUrls": {
                "type": "array",
                "maxItems": 50,
                "items": {"type": "string", "maxLength": 2000, "pattern": "^https?://"},
            },
            "link": {
                "type": "string",
                "maxLength": 2000,
                "description": "An http(s) URL; any other scheme is `invalid_input`",
            },
            "scheduledAt": {"type": "string", "maxLength": 40},
            "options": {
                "type": "object",
                "description": "Settings for the target platform, under its name only "
                '(`{"meta": {"mediaType": "REELS"}}`), as its `options` schema in '
                "`/api/platforms` declares",
            },
        },
    },
)
JOB_ERROR = Schema(
    "JobError",
    {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "retryable": {"type": "boolean"},
            "platformCode": {"type": ["string", "null"]},
            "httpStatus": {"type": ["integer", "null"]},
        },
    },
)
JOB_STATUS = Schema(
    "JobStatus",
    {
        "enum": [
            "scheduled",
            "queued",
            "running",
            "processing",
            "published",
            "failed",
            "dead",
            "cancelled",
        ]
    },
)
JOB = Schema(
    "Job",
    {
        "type": "object",
        "required": [
            "jobId",
            "postId",
            "status",
            "platform",
            "connectionId",
            "accountId",
            "attempts",
            "maxAttempts",
            "nextAttemptAt",
            "scheduledAt",
            "createdAt",
            "publishedAt",
            "remotePostId",
            "remoteUrl",
            "error",
            "notes",
        ],
        "properties": {
            "jobId": {"type": "string"},
            "postId": {"type": "string"},
            "status": JOB_STATUS,
            "platform": {"type": "string"},
            "connectionId": {"type": "string"},
            "accountId": {"type": "string"},
            "attempts": {"type": "integer"},
            "maxAttempts": {"type": "integer"},
            "nextAttemptAt": TIME,
            "scheduledAt": TIME,
            "createdAt": {"type": "string"},
            "publishedAt": TIME,
            "remotePostId": {"type": ["string", "null"]},
            "remoteUrl": {"type": ["string", "null"]},
            "error": nullable(JOB_ERROR),
            "notes": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Why the job took the path it did, for a person to read.",
            },
        },
    },
)
DEAD = Schema(
    "DeadJob",
    {
        "type": "object",
        "required": ["jobId", "reasonCode", "error", "deadAt", "timeInQueueSeconds"],
        "properties": {
            "jobId": {"type": "string"},
            "postId": {"type": "string"},
            "platform": {"type": "string"},
            "reasonCode": {"enum": ["max_attempts", "non_retryable", "expired", "auth"]},
            "error": nullable(JOB_ERROR),
            "deadAt": TIME,
            "timeInQueueSeconds": {"type": "number"},
        },
    },
)
ACCEPTED = record(
    "PublishAccepted",
    {
        "jobId": {"type": "string"},
        "status": {"enum": ["queued", "scheduled"]},
        "postId": {"type": "string"},
    },
)
POST_DELETED = Schema(
    "PostDeleted",
    {
        "type": "object",
        "required": ["postId", "deleted"],
        "properties": {"postId": {"type": "string"}, "deleted": {"type": "boolean"}},
    },
)


IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
JOB_FILTERS = (
    LIMIT_PARAM,
    CURSOR_PARAM,
    {"name": "status", "in": "query", "required": False, "schema": JOB_STATUS},
    {"name": "connectionId", "in": "query", "required": False, "schema": id_string()},
    {"name": "platform", "in": "query", "required": False, "schema": id_string(32)},
)
NOT_FOUND = problem("No such job (or not this tenant's)")
_QUICK_PUBLISH_CHECK = quick_check(PUBLISH_BODY)


def job_json(job: PublishJobRow) -> dict:
    waiting = job.status in ("scheduled", "queued", "failed")
    return {
        "jobId": job.id,
        "postId": job.post_id,
        "status": job.status,
        "platform": job.platform,
        "connectionId": job.connection_id,
        "accountId": job.account_id,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "nextAttemptAt": rfc3339(job.next_attempt_at) if waiting else None,
        "scheduledAt": rfc3339(job.scheduled_at),
        "createdAt": rfc3339(job.created_at),
        "publishedAt": rfc3339(job.published_at),
        "remotePostId": job.remote_post_id,
        "remoteUrl": job.remote_url,
        "error": job.error_json,
        "notes": list(job.notes or []),
    }


def dead_json(job: PublishJobRow) -> dict:
    return {
        "jobId": job.id,
        "postId": job.post_id,
        "platform": job.platform,
        "reasonCode": job.dead_reason,
        "error": job.error_json,
        "deadAt": rfc3339(job.dead_at),
        "timeInQueueSeconds": round(
            ((job.dead_at or utcnow()) - job.created_at).total_seconds(), 3
        ),
    }


def install(spec: ApiSpec) -> None:
    tags = ("publishing",)
    spec.route(
        "POST",
        "/api/publish",
        summary="Queue a post (checked first; 202 once committed)",
        tags=tags,
        parameters=(IDEMPOTENCY,),
        request_body={"required": True, "content": {"application/json": {"schema": PUBLISH_BODY}}},
        responses={
            200: json_response(ACCEPTED, "Seen before (same Idempotency-Key and body)"),
            202: json_response(ACCEPTED, "Accepted"),
            404: problem("No such connection or account"),
            409: problem(
                "Idempotency-Key reused with another body, or connection needs reconnecting"
            ),
            422: problem(
                "The platform would refuse it (`unprocessable`, its field problems: a post kind "
                "or account kind it does not take, a limit of the account's kind, options its "
                "schema does not allow), or `invalid_input`: link is not an http(s) URL, "
                "scheduledAt is malformed, past or "
                "too far ahead, or options are under another key than the platform's name"
            ),
        },
    )(publish)
    spec.route(
        "GET",
        "/api/jobs",
        summary="Jobs, filtered",
        tags=tags,
        parameters=JOB_FILTERS,
        responses={200: json_response(page_schema(JOB))},
    )(list_jobs)
    spec.route(
        "GET",
        "/api/jobs/{jobId}",
        summary="One job",
        tags=tags,
        parameters=(path_param("jobId"),),
        responses={200: json_response(JOB), 404: NOT_FOUND},
    )(read_job)
    spec.route(
        "DELETE",
        "/api/jobs/{jobId}",
        summary="Cancel a job that has not started",
        tags=tags,
        parameters=(path_param("jobId"),),
        responses={
            200: json_response(JOB),
            404: NOT_FOUND,
            409: problem("Already started or finished"),
        },
    )(cancel_job)
    spec.route(
        "GET",
        "/api/dlq",
        summary="Dead jobs",
        tags=("dlq",),
        parameters=(LIMIT_PARAM, CURSOR_PARAM),
        responses={200: json_response(page_schema(DEAD))},
    )(list_dead)
    spec.route(
        "POST",
        "/api/dlq/{jobId}/replay",
        summary="Queue a dead job again with fresh attempts",
        tags=("dlq",),
        parameters=(path_param("jobId"),),
        responses={200: json_response(JOB), 404: NOT_FOUND},
    )(replay)
    spec.route(
        "DELETE",
        "/api/dlq/{jobId}",
        summary="Discard a dead job (kept as cancelled)",
        tags=("dlq",),
        parameters=(path_param("jobId"),),
        responses={200: json_response(JOB), 404: NOT_FOUND},
    )(discard)
    spec.route(
        "DELETE",
        "/api/posts/{postId}",
        summary="Delete a published post at the platform",
        tags=tags,
        parameters=(path_param("postId"),),
        responses={
            200: json_response(POST_DELETED),
            404: problem("No such post"),
            409: problem("Not published"),
        },
    )(delete_post)


async def publish(request: web.Request) -> web.Response:
    body = await _publish_body(request)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 200):
        raise BadRequest("Idempotency-Key must be 1 to 200 characters")
    stored = await submit(
        request.app[GATEWAY],  # a route of the main app (config_dict costs a lookup chain)
        tenant_id=principal_of(request).tenant_id,
        body=body,
        idempotency_key=key,
    )
    # The answer of the request that made the job, whenever it is repeated (the job may have
    # run since: GET /api/jobs/{jobId} tells where it is now). The same body is the same
    # schedule, so it says what the job was accepted as.
    status = "scheduled" if body.get("scheduledAt") else "queued"
    return web.json_response(
        {"jobId": stored.job_id, "status": status, "postId": stored.post_id},
        status=200 if stored.replayed else 202,
    )


async def _publish_body(request: web.Request) -> dict:
    """The body; checked quickly when it is plainly valid, else fully (naming each problem)."""
    if not request.body_exists or request.content_type != "application/json":
        return await json_body(request, PUBLISH_BODY)
    body = parse_json(await request.read(), request.charset)
    return body if _QUICK_PUBLISH_CHECK(body) else validated(body, PUBLISH_BODY)


async def list_jobs(request: web.Request) -> web.Response:
    params = query_params(request, JOB_FILTERS)
    scope = cursor_scope(request)
    async with request.config_dict[GATEWAY].session() as session:
        rows = await JobRepository(session).page(
            principal_of(request).tenant_id,
            limit=params["limit"] + 1,
            after=after_cursor(params, scope),
            status=params.get("status"),
            connection_id=params.get("connectionId"),
            platform=params.get("platform"),
        )
    return web.json_response(keyset_page(rows, params["limit"], job_json, scope))


async def _job(request: web.Request) -> PublishJobRow:
    async with request.config_dict[GATEWAY].session() as session:
        job = await JobRepository(session).get(
            request.match_info["jobId"], tenant_id=principal_of(request).tenant_id
        )
    if job is None:
        raise ResourceNotFound(f"no job {request.match_info['jobId']}")
    return job


async def read_job(request: web.Request) -> web.Response:
    return web.json_response(job_json(await _job(request)))


async def cancel_job(request: web.Request) -> web.Response:
    job = await _job(request)
    gateway = request.config_dict[GATEWAY]
    if job.status == "scheduled" and job.poll_handle is not None and job.remote_post_id:
        # The platform's own scheduler holds it: take it back there first.
        if job.lease_until is not None and job.lease_until > utcnow():
            raise Conflict(f"job {job.id} is being checked with the platform; try again shortly")
        target = await load_target(gateway, job, active_only=False)
        await target.connector.cancel_scheduled(
            job.remote_post_id, target.account, target.credentials
        )
    async with gateway.transaction() as session:
        # Only as it was read: a worker may have handed it to the platform's scheduler since.
        cancelled = await JobRepository(session).cancel_waiting(
            job.id, status=job.status, attempts=job.attempts
        )
    if not cancelled:
        raise Conflict(
            f"job {job.id} is {job.status}; only a job that has not started can be cancelled"
        )
    return web.json_response(job_json(await _job(request)))


async def list_dead(request: web.Request) -> web.Response:
    params = query_params(request, (LIMIT_PARAM, CURSOR_PARAM))
    scope = cursor_scope(request)
    async with request.config_dict[GATEWAY].session() as session:
        rows = await JobRepository(session).dead_page(
            principal_of(request).tenant_id,
            limit=params["limit"] + 1,
            after=after_cursor(params, scope),
        )
    return web.json_response(keyset_page(rows, params["limit"], dead_json, scope))


async def replay(request: web.Request) -> web.Response:
    job = await _job(request)
    gateway = request.config_dict[GATEWAY]
    unsure: dict = {}
    if replays_without_looking(job, gateway.connector(job.platform)):
        # The operator who replays it has checked that the last attempt did not post: the
        # next attempt publishes (left marked, it would only be buried again).
        unsure = {"error_json": None, "notes": [*(job.notes or []), REPLAYED_UNCHECKED]}
    now = utcnow()
    async with gateway.transaction() as session:
        replayed = await JobRepository(session).set_dead_status(
            job.id,
            "queued",
            failures=0,
            max_attempts=job.attempts + gateway.settings.jobs.max_attempts,
            next_attempt_at=now,
            # Due again from now: the time it sat dead is not publish latency (nor queue wait).
            due_at=now,
            started_at=None,
            dead_reason=None,
            dead_at=None,
            **unsure,
        )
    if not replayed:
        raise ResourceNotFound(f"no dead job {job.id}")
    if gateway.workers is not None:
        gateway.workers.wake()
    return web.json_response(job_json(await _job(request)))


async def discard(request: web.Request) -> web.Response:
    job = await _job(request)
    async with request.config_dict[GATEWAY].transaction() as session:
        if not await JobRepository(session).set_dead_status(job.id, "cancelled"):
            raise ResourceNotFound(f"no dead job {job.id}")
    return web.json_response(job_json(await _job(request)))


async def delete_post(request: web.Request) -> web.Response:
    gateway = request.config_dict[GATEWAY]
    post_id = request.match_info["postId"]
    async with gateway.session() as session:
        job = await JobRepository(session).by_post(post_id, principal_of(request).tenant_id)
    if job is None:
        raise ResourceNotFound(f"no post {post_id}")
    if job.deleted_at is not None:
        return web.json_response({"postId": post_id, "deleted": True})
    if job.status != "published" or not job.remote_post_id:
        raise Conflict(f"post {post_id} is not published ({job.status})")
    target = await load_target(gateway, job, active_only=False)
    # Already gone at the platform is what was asked for.
    with contextlib.suppress(NotFound):
        await target.connector.delete(job.remote_post_id, target.account, target.credentials)
    async with gateway.transaction() as session:
        stored = await JobRepository(session).get(job.id)
        stored.deleted_at = utcnow()
        stored.analytics_next_at = None  # nothing left to measure
    return web.json_response({"postId": post_id, "deleted": True})

"""Connections: OAuth start, go link and callback, API-key connections, the connections API."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from ...connections import oauth_binding, oauth_flow
from ...connections.health import check_connection
from ...connections.service import (
    connect_api_key,
    delete_connection,
    get_connection,
    refresh_accounts,
)
from ...db.connections import AccountRepository, ConnectionRepository
from ...db.models import AccountRow, ConnectionRow
from ...errors import Conflict, FieldProblem, ResourceNotFound, UnsupportedCapability
from ...timefmt import rfc3339
from ...types import RefreshKind
from ..keys import GATEWAY, principal_of
from ..pagination import after_cursor, cursor_scope, keyset_page
from ..problems import problem_response
from ..spec import (
    CURSOR_PARAM,
    LIMIT_PARAM,
    ApiSpec,
    Schema,
    id_string,
    json_body,
    json_response,
    list_schema,
    page_schema,
    path_param,
    problem,
    query_params,
    record,
)

TIME = {"type": ["string", "null"], "format": "date-time"}
CONNECTION_STATUS = Schema("ConnectionStatus", {"enum": ["active", "needs_reconnect", "revoked"]})
CONNECTION = Schema(
    "Connection",
    {
        "type": "object",
        "required": [
            "id",
            "platform",
            "status",
            "health",
            "displayName",
            "externalUserId",
            "scopes",
            "tokenExpiresAt",
            "nextRefreshAt",
            "lastHealthCheckAt",
            "createdAt",
        ],
        "properties": {
            "id": {"type": "string"},
            "platform": {"type": "string"},
            "status": CONNECTION_STATUS,
            "health": {"enum": ["healthy", "warning", "critical", "unknown"]},
            "displayName": {"type": "string"},
            "externalUserId": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "tokenExpiresAt": TIME,
            "nextRefreshAt": TIME,
            "lastHealthCheckAt": TIME,
            "createdAt": {"type": "string", "format": "date-time"},
        },
    },
)
ACCOUNT = record(
    "Account",
    {
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "externalId": {"type": "string"},
        "name": {"type": "string"},
        "platform": {"type": "string"},
    },
)
HEALTH_RESULT = record(
    "HealthCheck",
    {
        "connectionId": {"type": "string"},
        "status": {"enum": ["healthy", "warning", "critical"]},
        "ok": {"type": "boolean"},
        "latencyMs": {"type": "number"},
        "checkedAt": {"type": "string"},
        "errorCode": {"type": ["string", "null"]},
        "detail": {"type": "string"},
    },
    required=["connectionId", "status", "ok", "latencyMs", "checkedAt"],
)
PLATFORM_PARAM = {
    "name": "platform",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9]{1,31}$"},
}
ID_PARAM = path_param("connectionId")
LIST_PARAMS = (
    LIMIT_PARAM,
    CURSOR_PARAM,
    {"name": "platform", "in": "query", "required": False, "schema": id_string(32)},
    {
        "name": "status",
        "in": "query",
        "required": False,
        "schema": CONNECTION_STATUS,
    },
)
START_BODY = Schema(
    "OAuthStart",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "returnUrl": id_string(2000),  # stored with the OAuth state: no NUL reaches SQL
            "connectionId": {**id_string(), "description": "reconnect this one"},
        },
    },
)
API_KEY_BODY = Schema(
    "ApiKeyConnect",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["platform", "apiKey"],
        "properties": {
            "platform": {"type": "string", "maxLength": 32},
            "apiKey": {**id_string(500), "minLength": 1},
        },
    },
)
STARTED = record(
    "OAuthStarted",
    {
        "authorizationUrl": {"type": "string"},
        "state": {"type": "string"},
        "expiresAt": {"type": "string"},
    },
)
CALLBACK_RESULT = record(
    "OAuthConnected",
    {"connectionId": {"type": "string"}, "created": {"type": "boolean"}},
    required=["connectionId"],
)
# Bounded so that the whole request line stays under the server's 8 KiB limit.
CALLBACK_PARAMS = tuple(
    {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": size},
    }
    for name, size in (("code", 2048), ("state", 256), ("error", 100), ("error_description", 1000))
)
NOT_FOUND = problem("No such connection (or not this tenant's)")


def connection_json(row: ConnectionRow) -> dict:
    return {
        "id": row.id,
        "platform": row.platform,
        "status": row.status,
        "health": row.health,
        "displayName": row.display_name,
        "externalUserId": row.external_user_id,
        "scopes": row.scopes.split(),
        "tokenExpiresAt": rfc3339(row.token_expires_at),
        "nextRefreshAt": rfc3339(row.next_refresh_at),
        "lastHealthCheckAt": rfc3339(row.last_health_check_at),
        "createdAt": rfc3339(row.created_at),
    }


def account_json(row: AccountRow) -> dict:
    return {
        "id": row.id,
        "kind": row.kind,
        "externalId": row.external_id,
        "name": row.name,
        "platform": row.platform,
    }


def install(spec: ApiSpec) -> None:
    tags = ("connections",)
    spec.route(
        "POST",
        "/api/oauth/{platform}/start",
        summary="Start connecting an OAuth account",
        description=(
            "Send the user's browser to `authorizationUrl` as it is. It points at the gateway "
            "(`GET /oauth/{platform}/go/{linkId}`), which works once: it binds the flow to that "
            "browser with a short-lived cookie and sends it on to the platform's consent page. "
            "The callback completes only in that browser. `state` is for your records; keep it "
            "on your server. See [Connecting accounts](#connecting-accounts-oauth)."
        ),
        tags=tags,
        parameters=(PLATFORM_PARAM,),
        request_body={"content": {"application/json": {"schema": START_BODY}}},
        responses={
            200: json_response(STARTED),
            404: problem("No such platform"),
            422: problem(
                "Not an OAuth platform (`unsupported_capability`), or returnUrl not allowed "
                "(`invalid_input`)"
            ),
        },
    )(oauth_start)
    spec.route(
        "GET",
        "/oauth/{platform}/go/{linkId}",
        summary="Where authorizationUrl points: binds the flow to this browser, then on to the "
        "platform",
        auth=False,
        tags=tags,
        parameters=(
            PLATFORM_PARAM,
            {**path_param("linkId"), "schema": id_string(100)},
        ),
        responses={
            302: {
                "description": "To the platform's consent page, with a short-lived HttpOnly "
                "cookie (SameSite=Lax, Path: the callback) that the callback requires"
            },
            404: problem("No such link"),
            410: problem("The link was already opened (it works once), or has expired"),
        },
    )(oauth_go)
    spec.route(
        "GET",
        "/api/oauth/{platform}/callback",
        summary="Where the platform sends the browser back",
        auth=False,
        tags=tags,
        parameters=(PLATFORM_PARAM, *CALLBACK_PARAMS),
        responses={
            200: json_response(CALLBACK_RESULT),
            302: {"description": "Back to returnUrl with connectionId or error"},
            400: problem(
                "Refused: bad, expired or reused state, a browser other than the one that "
                "opened authorizationUrl (`browser_mismatch`), denied consent"
            ),
            409: problem("A reconnect brought back a different account"),
            422: problem("Required permissions not granted"),
            502: problem("The platform refused"),
        },
    )(oauth_callback)
    spec.route(
        "POST",
        "/api/connections",
        summary="Connect an API-key platform",
        tags=tags,
        request_body={"required": True, "content": {"application/json": {"schema": API_KEY_BODY}}},
        responses={
            200: json_response(CONNECTION, "Updated"),
            201: json_response(CONNECTION, "Created"),
            404: problem("No such platform"),
            422: problem("The platform refused the key"),
        },
    )(create_connection)
    spec.route(
        "GET",
        "/api/connections",
        summary="The tenant's connections",
        tags=tags,
        parameters=LIST_PARAMS,
        responses={200: json_response(page_schema(CONNECTION))},
    )(list_connections)
    spec.route(
        "GET",
        "/api/connections/{connectionId}",
        summary="One connection",
        tags=tags,
        parameters=(ID_PARAM,),
        responses={200: json_response(CONNECTION), 404: NOT_FOUND},
    )(read_connection)
    spec.route(
        "GET",
        "/api/connections/{connectionId}/accounts",
        summary="Publishable accounts",
        tags=tags,
        parameters=(ID_PARAM,),
        responses={
            200: json_response(list_schema(ACCOUNT)),
            404: NOT_FOUND,
        },
    )(list_accounts)
    spec.route(
        "POST",
        "/api/connections/{connectionId}/refresh",
        summary="Refresh the token now",
        tags=tags,
        parameters=(ID_PARAM,),
        responses={
            200: json_response(CONNECTION),
            404: NOT_FOUND,
            409: problem("Needs reconnecting"),
            422: problem("This platform's tokens cannot be refreshed"),
            503: problem("The platform is unavailable"),
        },
    )(refresh_connection)
    spec.route(
        "POST",
        "/api/connections/{connectionId}/health-check",
        summary="Run a health check now",
        tags=tags,
        parameters=(ID_PARAM,),
        responses={200: json_response(HEALTH_RESULT), 404: NOT_FOUND, 409: problem("Revoked")},
    )(health_check)
    spec.route(
        "DELETE",
        "/api/connections/{connectionId}",
        summary="Revoke and forget the tokens",
        tags=tags,
        parameters=(ID_PARAM,),
        responses={200: json_response(CONNECTION), 404: NOT_FOUND},
    )(remove_connection)


async def oauth_start(request: web.Request) -> web.Response:
    body = await json_body(request, START_BODY)
    started = await oauth_flow.start(
        request.config_dict[GATEWAY],
        tenant_id=principal_of(request).tenant_id,
        platform=request.match_info["platform"],
        return_url=body.get("returnUrl"),
        connection_id=body.get("connectionId"),
    )
    return web.json_response(
        {
            "authorizationUrl": started.authorization_url,
            "state": started.state,
            "expiresAt": rfc3339(started.expires_at),
        }
    )


NO_REFERRER = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


async def oauth_go(request: web.Request) -> web.StreamResponse:
    platform = request.match_info["platform"]
    try:
        target, cookie = await oauth_flow.follow(
            request.config_dict[GATEWAY], platform, request.match_info["linkId"]
        )
    except oauth_flow.LinkRefused as refused:
        return problem_response(
            refused.status, refused.title, refused.detail, code=refused.code, headers=NO_REFERRER
        )
    response = _found(target)
    # Lax, not Strict: the platform sends the browser back with a top-level GET from its site.
    response.set_cookie(
        cookie.name,
        cookie.value,
        max_age=cookie.max_age,
        path=cookie.path,
        secure=cookie.secure,
        httponly=True,
        samesite="Lax",
    )
    return response


async def oauth_callback(request: web.Request) -> web.StreamResponse:
    try:
        saved, return_url = await oauth_flow.finish(
            request.config_dict[GATEWAY],
            request.match_info["platform"],
            request.query,
            request.cookies,
        )
    except oauth_flow.CallbackRefused as refused:
        if refused.return_url:
            target = oauth_flow.redirect_target(
                refused.return_url, {"error": refused.code, "error_description": refused.detail}
            )
            response: web.StreamResponse = _found(target)
        else:
            response = problem_response(
                refused.status,
                refused.title,
                refused.detail,
                code=refused.code,
                headers=NO_REFERRER,
            )
        return _spend_cookie(request, response)
    if return_url:
        target = oauth_flow.redirect_target(return_url, {"connectionId": saved.connection.id})
        return _spend_cookie(request, _found(target))
    response = web.json_response(
        {"connectionId": saved.connection.id, "created": saved.created}, headers=NO_REFERRER
    )
    return _spend_cookie(request, response)


def _found(target: str) -> web.Response:
    return web.Response(status=302, headers={"Location": target, **NO_REFERRER})


def _spend_cookie(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """The state is spent whatever the outcome: its binding cookie has no further use."""
    state = request.query.get("state")
    if state:
        name = oauth_binding.cookie_name(oauth_flow.state_hash(state))
        if name in request.cookies:
            # The path it was set with: the public one, which a proxy's prefix may lengthen.
            callback = oauth_flow.callback_url(
                request.config_dict[GATEWAY], request.match_info["platform"]
            )
            response.del_cookie(name, path=urlsplit(callback).path)
    return response


async def create_connection(request: web.Request) -> web.Response:
    body = await json_body(request, API_KEY_BODY)
    gateway = request.config_dict[GATEWAY]
    if body["platform"] not in gateway.connectors or gateway.connector(body["platform"]) is None:
        raise ResourceNotFound(
            f"no platform {body['platform']!r}",
            errors=[
                FieldProblem("platform", "unknown", f"one of: {', '.join(gateway.connectors)}")
            ],
        )
    saved = await connect_api_key(
        gateway,
        tenant_id=principal_of(request).tenant_id,
        platform=body["platform"],
        api_key=body["apiKey"],
    )
    return web.json_response(
        connection_json(saved.connection), status=201 if saved.created else 200
    )


async def list_connections(request: web.Request) -> web.Response:
    params = query_params(request, LIST_PARAMS)
    scope = cursor_scope(request)
    async with request.config_dict[GATEWAY].session() as session:
        rows = await ConnectionRepository(session).page(
            principal_of(request).tenant_id,
            limit=params["limit"] + 1,
            after=after_cursor(params, scope),
            platform=params.get("platform"),
            status=params.get("status"),
        )
    return web.json_response(keyset_page(rows, params["limit"], connection_json, scope))


async def _owned(request: web.Request) -> ConnectionRow:
    return await get_connection(
        request.config_dict[GATEWAY],
        request.match_info["connectionId"],
        tenant_id=principal_of(request).tenant_id,
    )


async def read_connection(request: web.Request) -> web.Response:
    return web.json_response(connection_json(await _owned(request)))


async def list_accounts(request: web.Request) -> web.Response:
    row = await _owned(request)
    async with request.config_dict[GATEWAY].session() as session:
        accounts = await AccountRepository(session).for_connection(row.id)
    return web.json_response({"data": [account_json(a) for a in accounts]})


async def refresh_connection(request: web.Request) -> web.Response:
    gateway = request.config_dict[GATEWAY]
    row = await _owned(request)
    if row.status != "active":
        raise Conflict(f"connection {row.id} is {row.status}; reconnect it through OAuth")
    connector = gateway.connectors.get(row.platform)
    if connector is None or connector.refresh_policy.kind is RefreshKind.NONE:
        raise UnsupportedCapability(f"{row.platform} tokens cannot be refreshed; reconnect instead")
    await gateway.tokens.refresh(row.id, force=True)
    await refresh_accounts(gateway, row.id)
    return web.json_response(connection_json(await get_connection(gateway, row.id)))


async def health_check(request: web.Request) -> web.Response:
    row = await _owned(request)
    if row.status == "revoked":
        raise Conflict(f"connection {row.id} is revoked")
    result = await check_connection(request.config_dict[GATEWAY], row)
    return web.json_response(result.as_json())


async def remove_connection(request: web.Request) -> web.Response:
    row = await _owned(request)
    removed = await delete_connection(request.config_dict[GATEWAY], row)
    return web.json_response(connection_json(removed))

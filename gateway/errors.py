"""Errors typed by what the core should do next, and the API errors answered to clients."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with one field of a request: what is wrong and what to change."""

    field: str
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose.

    ``code`` is a stable snake_case identifier clients and operators can match on;
    ``status`` is the HTTP status the web layer answers with when the error reaches it.
    """

    code = "gateway_error"
    status = 500
    title = "Gateway error"

    def __init__(self, detail: str = "", *, errors: list[FieldProblem] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = list(errors or [])


# --- Platform error categories: plugins raise these from their one request chokepoint. ---


class PlatformError(GatewayError):
    """A platform answered (or failed to answer) in a way the core must act on."""

    code = "platform_error"
    status = 502
    title = "Platform error"
    retryable = False

    def __init__(
        self,
        detail: str = "",
        *,
        platform_code: str | int | None = None,
        http_status: int | None = None,
        errors: list[FieldProblem] | None = None,
    ) -> None:
        super().__init__(detail, errors=errors)
        self.platform_code = platform_code
        self.http_status = http_status


class RateLimited(PlatformError):
    """The platform's rate limit was hit: retry after ``retry_after`` seconds."""

    code = "rate_limited"
    title = "Platform rate limit reached"
    status = 503
    retryable = True

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class Transient(PlatformError):
    """A temporary failure (5xx, 408, reset, timeout before sending): retry on the backoff."""

    code = "transient"
    title = "Temporary platform failure"
    status = 503
    retryable = True


class OutcomeUnknown(PlatformError):
    """The request may have reached the platform: reconcile before any retry."""

    code = "outcome_unknown"
    title = "Platform outcome unknown"
    status = 504
    retryable = False


class NeedsReauth(PlatformError):
    """The credentials are no longer accepted: refresh once if possible, else reconnect."""

    code = "needs_reauth"
    title = "Connection needs reconnecting"
    status = 409


class PermissionDenied(PlatformError):
    """The user or app lacks a permission or scope; ``missing_scopes`` names them when known."""

    code = "permission_denied"
    title = "Platform permission denied"
    status = 403

    def __init__(self, detail: str = "", *, missing_scopes: list[str] | None = None, **kwargs):
        super().__init__(detail, **kwargs)
        self.missing_scopes = list(missing_scopes or [])


class InvalidRequest(PlatformError):
    """The platform refused the request as invalid: fix the request, do not retry."""

    code = "invalid_request"
    title = "Platform rejected the request"
    status = 422


class NotFound(PlatformError):
    """The platform object is gone (for a delete, that counts as done)."""

    code = "not_found"
    title = "Platform object not found"
    status = 404


# --- API errors: what a client did wrong, answered as problem+json. ---


class ApiError(GatewayError):
    """An error in the client's request; never retried by the core."""


class BadRequest(ApiError):
    code = "bad_request"
    status = 400
    title = "Malformed request"


class Unauthenticated(ApiError):
    code = "unauthenticated"
    status = 401
    title = "Missing or invalid API key"


class Forbidden(ApiError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class ResourceNotFound(ApiError):
    code = "not_found"
    status = 404
    title = "Not found"


class MethodNotAllowed(ApiError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class Conflict(ApiError):
    code = "conflict"
    status = 409
    title = "Conflict"


class TooManyFailures(ApiError):
    """Too many failed authentications from the caller's address: wait ``retry_after``."""

    code = "too_many_failures"
    status = 429
    title = "Too many failed authentications"

    def __init__(self, detail: str = "", *, retry_after: int, **kwargs) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class PayloadTooLarge(ApiError):
    code = "payload_too_large"
    status = 413
    title = "Request body too large"


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"
    status = 415
    title = "Unsupported media type"


class InvalidInput(ApiError):
    """Well-formed, but a value cannot be used (a past ``scheduledAt``, a ``returnUrl`` not
    allowed): the gateway's own rule, not the platform's."""

    code = "invalid_input"
    status = 422
    title = "Request is invalid"


class Unprocessable(InvalidInput):
    """The platform would refuse it: a connector's check, or the platform's answer to a key."""

    code = "unprocessable"
    title = "Request is invalid for the target platform"


class UnsupportedCapability(Unprocessable):
    code = "unsupported_capability"
    title = "The platform does not support this"


# --- Start-up errors: one line for the operator, no traceback. ---


class StartupError(GatewayError):
    """Something stops the gateway from starting; the message is the one line an operator reads."""

    code = "startup_error"


class ConfigError(StartupError):
    """A configuration key is unknown, has a bad value, or a required secret is missing."""

    code = "config_error"

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config: {key}: {problem}")
        self.key = key
        self.problem = problem


class PluginError(StartupError):
    """A plugin failed to load or registered something it may not."""

    code = "plugin_error"

    def __init__(self, plugin: str, problem: str) -> None:
        super().__init__(f"plugin {plugin!r}: {problem}")
        self.plugin = plugin
        self.problem = problem

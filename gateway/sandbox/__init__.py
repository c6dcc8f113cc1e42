"""The toolkit every platform emulator is built on: app, control API, clock, tokens, limits."""

from __future__ import annotations

from .base import Sandbox
from .bearer import bearer_token
from .clock import SandboxClock, rfc3339
from .codes import AuthorizationCode
from .consent import ConsentCallback, redirect_with
from .grants import InvalidGrant, TokenStatus
from .journal import JournalEntry, credential_fingerprint
from .params import ParamError, RequestParams, read_params
from .pkce import s256_challenge
from .problems import ControlInputError
from .ratelimit import RateDecision, RateLimitWindow
from .routes import HostRoutes
from .targets import WebhookTargets
from .tokens import IssuedToken, TokenCheck, TokenStore

__all__ = [
    "AuthorizationCode",
    "ConsentCallback",
    "ControlInputError",
    "HostRoutes",
    "InvalidGrant",
    "IssuedToken",
    "JournalEntry",
    "ParamError",
    "RateDecision",
    "RateLimitWindow",
    "RequestParams",
    "Sandbox",
    "SandboxClock",
    "TokenCheck",
    "TokenStatus",
    "TokenStore",
    "WebhookTargets",
    "bearer_token",
    "credential_fingerprint",
    "read_params",
    "redirect_with",
    "rfc3339",
    "s256_challenge",
]

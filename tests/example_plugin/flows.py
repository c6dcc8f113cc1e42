"""Driving the Example Social sandbox over HTTP: PKCE, consent, token, revoke and API calls.

PKCE is computed here from RFC 7636 itself, not with the toolkit the sandbox uses, so a bug
shared by both sides cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

CLIENT_ID = "examplesocial-sandbox-client"
CLIENT_SECRET = "examplesocial-sandbox-secret"
CLIENT = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
REDIRECT_URI = "https://client.test/oauth/callback"
ALL_SCOPES = "profile posts.write pages.read"

AUTHORIZE = "/www.examplesocial.test/oauth/authorize"
TOKEN = "/api.examplesocial.test/oauth/token"
REVOKE = "/api.examplesocial.test/oauth/revoke"
ME = "/api.examplesocial.test/v1/me"
PAGES = "/api.examplesocial.test/v1/pages"


def page_posts(page_id: str) -> str:
    return f"{PAGES}/{page_id}/posts"


def post_path(post_id: str) -> str:
    return f"/api.examplesocial.test/v1/posts/{post_id}"


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters of the RFC 7636 alphabet


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_params(verifier: str, **overrides: str | None) -> dict[str, str]:
    """A valid authorization request; an override of None leaves that parameter out."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": ALL_SCOPES,
        "state": "state 1/+?=&",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


@dataclass(frozen=True)
class Reply:
    """A response read in full: status, headers and the JSON (or text) body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: Any

    @property
    def location(self) -> URL:
        return URL(self.headers["Location"])


@dataclass
class Social:
    """The Example Social sandbox at ``root`` (standalone, or mounted in a gateway)."""

    session: aiohttp.ClientSession
    root: str

    async def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        kwargs.setdefault("allow_redirects", False)
        url = path if path.startswith("http") else self.root + path
        async with self.session.request(method, url, **kwargs) as response:
            text = await response.text()
            try:
                body: Any = await response.json(content_type=None)
            except ValueError:
                body = text
            return Reply(response.status, response.headers, body)

    async def authorize(
        self, params: dict[str, str], decision: str = "allow", **form: Any
    ) -> Reply:
        """Press Allow (or Deny) on the consent page, with extra form fields."""
        data = [("decision", decision)]
        for name, value in form.items():
            for item in value if isinstance(value, list) else [value]:
                data.append((name, item))
        return await self.call("POST", AUTHORIZE, params=params, data=data)

    async def code(self, verifier: str, **form: Any) -> str:
        reply = await self.authorize(authorize_params(verifier), **form)
        assert reply.status == 302, reply.body
        assert "error" not in reply.location.query, reply.location
        return reply.location.query["code"]

    async def exchange(self, code: str, verifier: str | None, /, **overrides: str | None) -> Reply:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            **CLIENT,
            **overrides,
        }
        return await self.token({k: v for k, v in form.items() if v is not None})

    async def token(self, form: dict[str, str], **kwargs: Any) -> Reply:
        return await self.call("POST", TOKEN, data=form, **kwargs)

    async def connect(self, **form: Any) -> dict[str, Any]:
        """The whole flow: consent, then the code exchange; the token answer."""
        verifier = new_verifier()
        reply = await self.exchange(await self.code(verifier, **form), verifier)
        assert reply.status == 200, reply.body
        return reply.body

    async def refresh(self, refresh_token: str) -> Reply:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **CLIENT}
        return await self.token(form)

    async def revoke(self, token: str, **client: str) -> Reply:
        return await self.call("POST", REVOKE, data={"token": token, **(client or CLIENT)})

    async def api(self, path: str, token: str | None, method: str = "GET", **kwargs: Any) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.call(method, path, headers=headers, **kwargs)

    async def control(self, method: str, name: str, body: Any = None) -> Reply:
        return await self.call(method, f"/_control/{name}", json=body)

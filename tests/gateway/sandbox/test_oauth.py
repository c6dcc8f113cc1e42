"""The consent page (Allow, Deny, auto-approve) and authorization codes with PKCE."""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web
from yarl import URL

from gateway.sandbox import s256_challenge

from .example import REDIRECT_URI, ExampleSandbox
from .flows import AUTHORIZE, Served, authorize, authorize_params, me, redeem, serve

VERIFIER = "v" * 20 + "-._~" + "0123456789abcdefghijklmnop"  # 50 characters, RFC 7636 alphabet


async def test_get_shows_the_consent_page_escaped(served: Served) -> None:
    response = await served.request("GET", AUTHORIZE, params=authorize_params())
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = await response.text()
    assert "Acme &lt;b&gt;Publisher&lt;/b&gt; &amp; &quot;Co&quot;" in page
    assert "<b>Publisher</b>" not in page
    assert "<li>profile.read</li><li>posts.write</li>" in page
    assert 'name="decision" value="allow"' in page and 'name="decision" value="deny"' in page
    # The form posts back to the same path (mount prefix included) with the original query.
    action = html.unescape(page.split('action="', 1)[1].split('"', 1)[0])
    assert URL(action).path == served.prefix + AUTHORIZE
    assert dict(URL(action).query) == authorize_params()


async def test_allow_redirects_with_a_code_that_yields_tokens(served: Served) -> None:
    response = await served.request(
        "POST", AUTHORIZE, params=authorize_params(), data={"decision": "allow"}
    )
    assert response.status == 302
    location = URL(response.headers["Location"])
    assert str(location.with_query(None)) == REDIRECT_URI
    assert location.query["state"] == "state-1"
    tokens = await (await redeem(served, location.query["code"])).json()
    assert (await me(served, tokens["access_token"])).status == 200


async def test_deny_redirects_with_access_denied(served: Served) -> None:
    response = await served.request(
        "POST", AUTHORIZE, params=authorize_params(), data={"decision": "deny"}
    )
    assert response.status == 302
    location = URL(response.headers["Location"])
    assert str(location.with_query(None)) == REDIRECT_URI
    assert dict(location.query) == {
        "error": "access_denied",
        "error_description": "The user denied the request.",
        "state": "state-1",
    }


async def test_no_decision_is_400(served: Served) -> None:
    response = await served.request("POST", AUTHORIZE, params=authorize_params(), data={})
    assert response.status == 400


class CancellingSandbox(ExampleSandbox):
    """A platform (LinkedIn-like) whose Deny says something else."""

    def deny_params(self, request: web.Request) -> dict[str, str | None]:
        return {
            "error": "user_cancelled_authorize",
            "error_description": "The user cancelled the authorization",
            "state": request.query.get("state"),
        }


async def test_deny_parameters_are_the_platforms(aiohttp_client: Any) -> None:
    served = await serve(aiohttp_client, CancellingSandbox(), "mounted")
    response = await served.request(
        "POST", AUTHORIZE, params=authorize_params(), data={"decision": "deny"}
    )
    query = URL(response.headers["Location"]).query
    assert query["error"] == "user_cancelled_authorize"
    assert query["state"] == "state-1"


async def test_auto_approve_skips_the_page(aiohttp_client: Any) -> None:
    served = await serve(aiohttp_client, ExampleSandbox(auto_approve=True), "mounted")
    response = await served.request("GET", AUTHORIZE, params=authorize_params())
    assert response.status == 302
    code = URL(response.headers["Location"]).query["code"]
    assert (await redeem(served, code)).status == 200


async def test_pkce_s256_and_plain_succeed(served: Served) -> None:
    code = await authorize(
        served, code_challenge=s256_challenge(VERIFIER), code_challenge_method="S256"
    )
    assert (await redeem(served, code, code_verifier=VERIFIER)).status == 200
    plain = await authorize(served, code_challenge=VERIFIER, code_challenge_method="plain")
    assert (await redeem(served, plain, code_verifier=VERIFIER)).status == 200


async def refused(served: Served, code: str, **form: str) -> str:
    response = await redeem(served, code, **form)
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid_grant"
    return body["reason"]


async def test_pkce_refuses_a_wrong_or_missing_verifier(served: Served) -> None:
    challenge = {"code_challenge": s256_challenge(VERIFIER), "code_challenge_method": "S256"}
    wrong = await authorize(served, **challenge)
    assert await refused(served, wrong, code_verifier=VERIFIER[:-1] + "x") == "pkce_mismatch"
    # A failed attempt spends the code: the right verifier is too late now.
    assert await refused(served, wrong, code_verifier=VERIFIER) == "used"
    missing = await authorize(served, **challenge)
    assert await refused(served, missing) == "pkce_required"
    # The plain challenge is not accepted as the verifier of an S256 one.
    hashed = await authorize(served, **challenge)
    assert await refused(served, hashed, code_verifier=challenge["code_challenge"]) == (
        "pkce_mismatch"
    )


async def test_a_code_is_single_use_and_bound_to_client_and_redirect(served: Served) -> None:
    code = await authorize(served)
    assert (await redeem(served, code)).status == 200
    assert await refused(served, code) == "used"
    other = await authorize(served)
    assert await refused(served, other, redirect_uri="https://evil.test/cb") == (
        "redirect_uri_mismatch"
    )
    assert await refused(served, "made-up") == "unknown"


async def test_a_code_expires_after_ten_minutes_of_sandbox_time(served: Served) -> None:
    late = await authorize(served)
    in_time = await authorize(served)
    await served.control("POST", "clock", {"advanceSeconds": 599})
    assert (await redeem(served, in_time)).status == 200
    await served.control("POST", "clock", {"advanceSeconds": 2})
    assert await refused(served, late) == "expired"

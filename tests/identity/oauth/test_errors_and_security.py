"""OAuth errors where the RFCs put them, lockout and throttling without enumeration, and bad
input everywhere answered with a 4xx, never a 500."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.identity.oauth.conftest import (
    PASSWORD,
    REDIRECT_URI,
    Provider,
    form_of,
    running_provider,
    sign_in,
)


def authorize_url(provider: Provider, **overrides: str | None) -> tuple[str, str]:
    verifier = generate_token(64)
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "webapp",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "st",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{provider.base_url}/oauth2/authorize?{query}", verifier


def redirected_error(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return parse_qs(urlsplit(location).query)


async def code_for(provider: Provider, browser: httpx.AsyncClient) -> tuple[str, str]:
    url, verifier = authorize_url(provider)
    done = await sign_in(browser, url, username=provider.people["alice"].phone)
    assert done.status_code == 303, done.text
    return parse_qs(urlsplit(done.headers["location"]).query)["code"][0], verifier


async def test_authorization_errors(provider: Provider) -> None:
    async with provider.http() as browser:
        # Unknown client or a redirect URI not registered exactly: never redirect.
        for overrides in (
            {"client_id": "nobody"},
            {"redirect_uri": REDIRECT_URI + "/"},
            {"redirect_uri": "https://evil.example/callback"},
            {"redirect_uri": None},
        ):
            url, _ = authorize_url(provider, **overrides)
            page = await browser.get(url)
            assert page.status_code == 400 and "location" not in page.headers
            assert page.headers["content-type"].startswith("text/html")
            assert "无法继续登录" in page.text
        url, _ = authorize_url(provider, client_id="nobody")
        problem = await browser.get(url, headers={"Accept": "application/json"})
        assert problem.status_code == 400
        assert problem.headers["content-type"].startswith("application/problem+json")

        # Everything else goes back to the client with the error and the state.
        cases: list[tuple[dict[str, str | None], str]] = [
            ({"code_challenge": None}, "invalid_request"),
            ({"code_challenge_method": "plain"}, "invalid_request"),
            ({"code_challenge_method": None}, "invalid_request"),
            ({"code_challenge": "short"}, "invalid_request"),
            ({"response_type": "token"}, "unsupported_response_type"),
            ({"scope": "openid admin:everything"}, "invalid_scope"),
            ({"prompt": "none login"}, "invalid_request"),
            ({"max_age": "soon"}, "invalid_request"),
        ]
        for overrides, error in cases:
            url, _ = authorize_url(provider, **overrides)
            query = redirected_error(await browser.get(url))
            assert query["error"] == [error], overrides
            assert query["state"] == ["st"]
            assert query["iss"] == [provider.settings.issuer]
        url, _ = authorize_url(provider)
        repeated = await browser.get(url + "&scope=openid")
        assert redirected_error(repeated)["error"] == ["invalid_request"]


async def test_token_endpoint_errors(provider: Provider) -> None:
    webapp = ("webapp", provider.secrets["webapp"])
    async with provider.http() as http:

        async def token(data: dict[str, str], **kwargs: Any) -> tuple[int, dict[str, Any]]:
            answer = await http.post("/oauth2/token", data=data, **kwargs)
            assert answer.headers["cache-control"] == "no-store"
            body: dict[str, Any] = answer.json()
            return answer.status_code, body

        code, verifier = await code_for(provider, http)
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        # Wrong verifier, missing verifier, wrong redirect URI: invalid_grant / invalid_request.
        status, body = await token({**exchange, "code_verifier": generate_token(64)}, auth=webapp)
        assert (status, body["error"]) == (400, "invalid_grant")
        status, body = await token({**exchange, "code_verifier": ""}, auth=webapp)
        assert (status, body["error"]) == (400, "invalid_request")
        status, body = await token({**exchange, "redirect_uri": REDIRECT_URI + "x"}, auth=webapp)
        assert (status, body["error"]) == (400, "invalid_grant")
        # Client authentication: unknown client, bad secret, two methods at once.
        status, body = await token(exchange, auth=("nobody", "x"))
        assert (status, body["error"]) == (401, "invalid_client")
        status, body = await token(exchange, auth=("webapp", "wrong"))
        assert (status, body["error"]) == (401, "invalid_client")
        status, body = await token({**exchange, "client_secret": "x"}, auth=webapp)
        assert (status, body["error"]) == (400, "invalid_request")
        status, body = await token(exchange)
        assert (status, body["error"]) == (401, "invalid_client")
        # The code still works after all that, once.
        status, first = await token(exchange, auth=webapp)
        assert status == 200, first
        # A replayed code fails and revokes what the first exchange issued.
        status, body = await token(exchange, auth=webapp)
        assert (status, body["error"]) == (400, "invalid_grant")
        rs = {"client_id": "resource-server", "client_secret": provider.secrets["resource-server"]}
        introspected = await http.post(
            "/oauth2/introspect", data={"token": first["access_token"], **rs}
        )
        assert introspected.json() == {"active": False}
        status, body = await token(
            {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth=webapp
        )
        assert (status, body["error"]) == (400, "invalid_grant")

        # Grants: unsupported, not allowed for the client, parameters missing or repeated.
        status, body = await token({"grant_type": "password"}, auth=webapp)
        assert (status, body["error"]) == (400, "unsupported_grant_type")
        status, body = await token({"grant_type": "client_credentials"}, auth=webapp)
        assert (status, body["error"]) == (400, "unauthorized_client")
        status, body = await token({}, auth=webapp)
        assert (status, body["error"]) == (400, "invalid_request")
        status, body = await token({"grant_type": "authorization_code"}, auth=webapp)
        assert (status, body["error"]) == (400, "invalid_request")
        answer = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials&grant_type=client_credentials",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=webapp,
        )
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
        answer = await http.post("/oauth2/token", json={"grant_type": "client_credentials"})
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
        answer = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic !!!notbase64"},
        )
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
        status, body = await token(
            {"grant_type": "client_credentials", "scope": "everything"},
            auth=("amr-system", provider.secrets["amr-system"]),
        )
        assert (status, body["error"]) == (400, "invalid_scope")
        status, body = await token(
            {"grant_type": "refresh_token", "refresh_token": "made-up"}, auth=webapp
        )
        assert (status, body["error"]) == (400, "invalid_grant")


def _comparable(response: httpx.Response) -> tuple[int, str]:
    """A sign-in page without what differs by design (the name typed in)."""
    return response.status_code, re.sub(r'name="username" value="[^"]*"', "", response.text)


async def test_lockout_after_five_failures_looks_like_a_wrong_password(
    provider: Provider,
) -> None:
    alice = provider.people["alice"]
    async with provider.http() as browser:
        url, _ = authorize_url(provider)
        page = await browser.get(url)
        action, fields = form_of(page.text)

        async def attempt(username: str, password: str) -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            answer = await browser.post(
                action, data={**fields, "username": username, "password": password}
            )
            return answer, time.perf_counter() - started

        wrong, wrong_took = await attempt(alice.phone, "Wrong-password-1")
        unknown, unknown_took = await attempt("13999999999", "Wrong-password-1")
        garbage, _ = await attempt("not an account at all", "Wrong-password-1")
        assert wrong.status_code == 200 and "账号或密码错误" in wrong.text
        assert _comparable(wrong) == _comparable(unknown) == _comparable(garbage)
        # Both paths verify one argon2 hash: neither is an order of magnitude faster.
        assert unknown_took > wrong_took / 4 and wrong_took > unknown_took / 4

        for _ in range(4):
            await attempt(alice.phone, "Wrong-password-1")
        # Locked now: the right password gets the very same answer as a wrong one.
        locked, _ = await attempt(alice.phone, PASSWORD)
        assert _comparable(locked) == _comparable(wrong)
        assert "set-cookie" not in locked.headers or "idp_session" not in locked.headers.get(
            "set-cookie", ""
        )
    types = await provider.outbox_types()
    assert types.count("pingtai.identity.signin.locked") == 1
    # Another person is not affected by Alice's lock.
    async with provider.http() as other:
        url, _ = authorize_url(provider)
        done = await sign_in(other, url, username=provider.people["carol"].phone)
        assert done.status_code == 303


async def test_an_address_with_too_many_failures_is_throttled(database_url: str) -> None:
    async with running_provider(database_url, oauth_ip_max_failures=3) as provider:
        async with provider.http() as browser:
            url, _ = authorize_url(provider)
            page = await browser.get(url)
            action, fields = form_of(page.text)
            for n in range(3):
                await browser.post(
                    action, data={**fields, "username": f"1390000000{n}", "password": "x"}
                )
            # Different accounts each time, then the right password: still refused.
            refused = await browser.post(
                action,
                data={**fields, "username": provider.people["bob"].phone, "password": PASSWORD},
            )
            assert "账号或密码错误" in refused.text
            assert "location" not in refused.headers


async def test_forms_are_bound_to_the_browser_and_unaltered(provider: Provider) -> None:
    async with provider.http() as browser:
        url, _ = authorize_url(provider)
        page = await browser.get(url)
        action, fields = form_of(page.text)
        credentials = {"username": provider.people["alice"].phone, "password": PASSWORD}
        # Another browser (no cookie) posting this browser's form: a forged request.
        async with provider.http() as attacker:
            forged = await attacker.post(action, data={**fields, **credentials})
            assert forged.status_code == 400 and "location" not in forged.headers
        for name, value in (
            ("csrf_token", "0" * 64),
            ("auth_request", fields["auth_request"] + "x"),
        ):
            tampered = await browser.post(action, data={**fields, name: value, **credentials})
            assert tampered.status_code == 400
        stage = await browser.post("/oauth2/authorize/organisation", data={**fields, "org": ""})
        assert stage.status_code == 400
        ok = await browser.post(action, data={**fields, **credentials})
        assert ok.status_code == 303


async def test_bad_input_gets_a_4xx_never_a_500(provider: Provider) -> None:
    junk_values = ["", "x" * 10_000, "\x00", "' OR 1=1 --", "%", "中文", "a=b&c"]
    async with provider.http() as http:
        for value in junk_values:
            for path in ("/oauth2/authorize/signin", "/oauth2/authorize/organisation"):
                answer = await http.post(
                    path, data={"auth_request": value, "csrf_token": value, "username": value}
                )
                assert 400 <= answer.status_code < 500, (path, value)
            answer = await http.get("/oauth2/authorize", params={"client_id": value, "x": value})
            assert 400 <= answer.status_code < 500
            for path in ("/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"):
                answer = await http.post(
                    path, data={"grant_type": value, "token": value, "client_id": value}
                )
                assert 400 <= answer.status_code < 500, (path, value)
            if value.isascii() and value.isprintable():
                answer = await http.get(
                    "/oauth2/userinfo", headers={"Authorization": f"Bearer {value}x"}
                )
                assert answer.status_code == 401
        for body in (b"\xff\xfe", b"{", b"a" * 100_000):
            for path in ("/oauth2/token", "/oauth2/authorize/signin"):
                answer = await http.post(
                    path,
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                assert 400 <= answer.status_code < 500, (path, body[:5])
        answer = await http.post(
            "/oauth2/token",
            content=b"--b\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert answer.status_code == 400
        assert (await http.get("/oauth2/userinfo")).status_code == 401
        # A client-credentials token is not a person's: userinfo refuses it.
        answer = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("amr-system", provider.secrets["amr-system"]),
        )
        system_token = answer.json()["access_token"]
        answer = await http.get(
            "/oauth2/userinfo", headers={"Authorization": f"Bearer {system_token}"}
        )
        assert answer.status_code == 403

"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at ``/oauth2/logout``: the
person's provider sessions and refresh tokens end everywhere, with every client."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.identity.oauth.conftest import SIGNED_OUT_URI, Provider, browse, sign_in
from tests.identity.oauth.test_authorization_code import authorize, webapp

_HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')


async def signed_in(provider: Provider, client: AsyncOAuth2Client) -> dict[str, Any]:
    """Sign alice in through the browser-like client; her tokens."""
    url, verifier, _ = await authorize(client, provider)
    done = await sign_in(client, url, username=provider.people["alice"].phone)
    token: dict[str, Any] = await client.fetch_token(
        f"{provider.base_url}/oauth2/token",
        authorization_response=done.headers["location"],
        code_verifier=verifier,
    )
    return token


async def refreshed(provider: Provider, refresh_token: str) -> httpx.Response:
    async with provider.http() as http:
        return await http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=("webapp", provider.secrets["webapp"]),
        )


async def test_discovery_names_the_end_session_endpoint(provider: Provider) -> None:
    async with provider.http() as http:
        metadata = (await http.get("/.well-known/openid-configuration")).json()
    assert metadata["end_session_endpoint"] == f"{provider.settings.issuer}/oauth2/logout"


async def test_logout_with_an_id_token_hint_ends_every_session_and_refresh_token(
    provider: Provider,
) -> None:
    async with webapp(provider) as here, webapp(provider) as elsewhere:
        mine = await signed_in(provider, here)
        theirs = await signed_in(provider, elsewhere)
        assert (await refreshed(provider, theirs["refresh_token"])).status_code == 200

        out = await browse(
            here,
            "GET",
            f"{provider.base_url}/oauth2/logout",
            params={
                "id_token_hint": mine["id_token"],
                "post_logout_redirect_uri": SIGNED_OUT_URI,
                "state": "st-1",
            },
        )
        assert out.status_code == 303, out.text
        location = out.headers["location"]
        assert location.startswith(SIGNED_OUT_URI)
        assert parse_qs(urlsplit(location).query)["state"] == ["st-1"]
        assert "pingtai_idp_session=" in out.headers["set-cookie"]

        # Both browsers' refresh tokens fail now (the other one's latest too).
        for old in (mine["refresh_token"], theirs["refresh_token"]):
            refused = await refreshed(provider, old)
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        # The access token is denied, and the other browser meets the sign-in form again.
        async with provider.http() as http:
            info = await http.get(
                "/oauth2/userinfo", headers={"Authorization": f"Bearer {mine['access_token']}"}
            )
        assert info.status_code == 401
        url, _, _ = await authorize(elsewhere, provider)
        again = await browse(elsewhere, "GET", url)
        assert again.status_code == 200 and "csrf_token" in again.text


async def test_an_expired_hint_still_counts_and_a_forged_one_does_not(provider: Provider) -> None:
    async with webapp(provider) as browser:
        tokens = await signed_in(provider, browser)
        head, body, signature = tokens["id_token"].split(".")
        forged = f"{head}.{body}.{signature[:-4]}AAAA"
        refused = await browse(
            browser, "GET", f"{provider.base_url}/oauth2/logout", params={"id_token_hint": forged}
        )
        assert refused.status_code == 400 and "invalid_logout" in refused.text
        # The access token is not an ID token.
        refused = await browse(
            browser,
            "GET",
            f"{provider.base_url}/oauth2/logout",
            params={"id_token_hint": tokens["access_token"]},
        )
        assert refused.status_code == 400
        assert (await refreshed(provider, tokens["refresh_token"])).status_code == 200


async def test_only_a_registered_return_address_is_followed(provider: Provider) -> None:
    async with webapp(provider) as browser:
        tokens = await signed_in(provider, browser)
        for params in (
            {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.cn/"},
            {"client_id": "mobile", "id_token_hint": tokens["id_token"]},
            {"post_logout_redirect_uri": SIGNED_OUT_URI},
            {"client_id": "no-such-client"},
        ):
            refused = await browse(
                browser, "GET", f"{provider.base_url}/oauth2/logout", params=params
            )
            assert refused.status_code == 400, params
        # Nothing was ended by the refusals.
        assert (await refreshed(provider, tokens["refresh_token"])).status_code == 200


async def test_without_a_hint_the_person_confirms_in_their_own_browser(provider: Provider) -> None:
    async with webapp(provider) as browser:
        tokens = await signed_in(provider, browser)
        url = f"{provider.base_url}/oauth2/logout"
        page = await browse(
            browser,
            "GET",
            url,
            params={"client_id": "webapp", "post_logout_redirect_uri": SIGNED_OUT_URI},
        )
        assert page.status_code == 200 and "退出登录" in page.text
        fields = {m["name"]: unescape(m["value"]) for m in _HIDDEN.finditer(page.text)}
        assert fields["post_logout_redirect_uri"] == SIGNED_OUT_URI
        # Visiting the page ended nothing; a form with another browser's token ends nothing.
        current = await refreshed(provider, tokens["refresh_token"])
        assert current.status_code == 200
        tokens = current.json()
        forged = await browse(browser, "POST", url, data={**fields, "csrf_token": "x" * 64})
        assert forged.status_code == 200 and "csrf_token" in forged.text
        current = await refreshed(provider, tokens["refresh_token"])
        assert current.status_code == 200
        tokens = current.json()

        confirmed = await browse(browser, "POST", url, data=fields)
        assert confirmed.status_code == 303
        assert confirmed.headers["location"].startswith(SIGNED_OUT_URI)
        refused = await refreshed(provider, tokens["refresh_token"])
        assert refused.status_code == 400

"""The authorization-code flow with PKCE, run by authlib's client against the served provider:
the sign-in form, the provider session, organisation choice, ID tokens, userinfo, refresh."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from jwt import PyJWKClient

from tests.identity.oauth.conftest import (
    ALICE_RESIDENT_ID,
    PASSWORD,
    REDIRECT_URI,
    Provider,
    browse,
    form_of,
    sign_in,
)


def webapp(provider: Provider, **kwargs: Any) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id="webapp",
        client_secret=provider.secrets["webapp"],
        scope="openid profile phone email pingtai",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        base_url=provider.base_url,
        **kwargs,
    )


async def verified(provider: Provider, token: str, *, audience: str) -> dict[str, Any]:
    """Verify a token through the JWKS URL with PyJWT's own client (blocking: in a thread)."""

    def verify() -> dict[str, Any]:
        key = PyJWKClient(f"{provider.base_url}/.well-known/jwks.json").get_signing_key_from_jwt(
            token
        )
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["RS256", "ES256"],
            audience=audience,
            issuer=provider.settings.issuer,
        )
        return claims

    return await asyncio.to_thread(verify)


async def authorize(
    client: AsyncOAuth2Client, provider: Provider, **params: str
) -> tuple[str, str, str]:
    """An authorization URL with a fresh verifier and nonce: (url, verifier, nonce)."""
    verifier = generate_token(64)
    nonce = generate_token(20)
    url, _ = client.create_authorization_url(
        f"{provider.base_url}/oauth2/authorize", code_verifier=verifier, nonce=nonce, **params
    )
    return url, verifier, nonce


async def test_discovery_names_the_endpoints_under_the_issuer(provider: Provider) -> None:
    async with provider.http() as http:
        metadata = (await http.get("/.well-known/openid-configuration")).json()
        jwks = (await http.get("/.well-known/jwks.json")).json()
    issuer = provider.settings.issuer
    assert metadata["issuer"] == issuer
    assert metadata["authorization_endpoint"] == f"{issuer}/oauth2/authorize"
    assert metadata["token_endpoint"] == f"{issuer}/oauth2/token"
    assert metadata["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
    assert {k["alg"] for k in jwks["keys"]} == {"RS256", "ES256"}
    assert all("d" not in k and k["use"] == "sig" and k["kid"] for k in jwks["keys"])


async def test_a_citizen_signs_in_with_pkce_and_gets_verifiable_tokens(provider: Provider) -> None:
    alice = provider.people["alice"]
    async with webapp(provider) as client:
        url, verifier, nonce = await authorize(client, provider, state="s-123")
        done = await sign_in(client, url, username=alice.phone)
        assert done.status_code == 303
        location = done.headers["location"]
        query = parse_qs(urlsplit(location).query)
        assert location.startswith(REDIRECT_URI)
        assert query["state"] == ["s-123"]
        assert query["iss"] == [provider.settings.issuer]
        cookie = done.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/oauth2" in cookie

        token = await client.fetch_token(
            f"{provider.base_url}/oauth2/token",
            authorization_response=location,
            code_verifier=verifier,
        )
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 300

        header = jwt.get_unverified_header(token["access_token"])
        assert header["typ"] == "at+jwt" and header["kid"]
        access = await verified(provider, token["access_token"], audience="pingtai")
        assert access["sub"] == alice.id
        assert access["client_id"] == "webapp"
        assert access["roles"] == ["citizen"]
        assert access["acr"] == "2"
        assert "org" not in access
        assert set(access["scope"].split()) == {"openid", "profile", "phone", "email", "pingtai"}
        assert access["exp"] - access["iat"] == 300

        id_token = await verified(provider, token["id_token"], audience="webapp")
        assert jwt.get_unverified_header(token["id_token"])["alg"] == "RS256"
        assert id_token["nonce"] == nonce
        assert id_token["sub"] == alice.id
        assert id_token["acr"] == "2" and id_token["amr"] == ["pwd"]
        assert id_token["auth_time"] <= id_token["iat"]
        digest = hashlib.sha256(token["access_token"].encode()).digest()[:16]
        assert id_token["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

        info = (await client.get("/oauth2/userinfo")).json()
        assert info == {
            "sub": alice.id,
            "name": alice.name,
            "updated_at": info["updated_at"],
            "email": alice.email,
            "phone_number": alice.phone,
            "roles": ["citizen"],
            "acr": "2",
        }

        # The provider session skips the form the second time.
        url, verifier, _ = await authorize(client, provider)
        again = await browse(client, "GET", url)
        assert again.status_code == 302
        assert "code=" in again.headers["location"]
        # prompt=login asks again.
        url, _, _ = await authorize(client, provider, prompt="login")
        assert "csrf_token" in (await browse(client, "GET", url)).text

    # A browser without the session and prompt=none: login_required at the redirect URI.
    async with webapp(provider) as stranger:
        url, _, _ = await authorize(stranger, provider, prompt="none", state="x")
        refused = await browse(stranger, "GET", url)
        query = parse_qs(urlsplit(refused.headers["location"]).query)
        assert query["error"] == ["login_required"] and query["state"] == ["x"]


async def test_signing_in_by_email_or_resident_id_number(provider: Provider) -> None:
    for username in (provider.people["alice"].email.upper(), ALICE_RESIDENT_ID):
        async with webapp(provider) as client:
            url, _, _ = await authorize(client, provider)
            done = await sign_in(client, url, username=username)
            assert done.status_code == 303, username
            assert "code=" in done.headers["location"]


async def test_a_member_of_two_departments_chooses_whom_to_act_for(provider: Provider) -> None:
    bob = provider.people["bob"]
    async with webapp(provider) as client:
        url, verifier, _ = await authorize(client, provider)
        choice = await sign_in(client, url, username=bob.phone)
        assert choice.status_code == 200
        assert "选择办事身份" in choice.text and "Choose whom you act for" in choice.text
        action, fields = form_of(choice.text)
        done = await browse(client, "POST", action, data={**fields, "org": provider.orgs["hrss"]})
        assert done.status_code == 303
        token = await client.fetch_token(
            f"{provider.base_url}/oauth2/token",
            authorization_response=done.headers["location"],
            code_verifier=verifier,
        )
        access = await verified(provider, token["access_token"], audience="pingtai")
        assert access["org"] == provider.orgs["hrss"]
        assert sorted(access["roles"]) == ["citizen", "officer"]

        # Someone else's department cannot be chosen by editing the form.
        url, _, _ = await authorize(client, provider)
        page = await browse(client, "GET", url)
        action, fields = form_of(page.text)
        forged = await browse(client, "POST", action, data={**fields, "org": "f" * 32})
        assert forged.status_code == 400
        # ...and a citizen's choice gives no org.
        done = await browse(client, "POST", action, data={**fields, "org": ""})
        assert done.status_code == 303


async def test_a_member_of_one_department_acts_for_it(provider: Provider) -> None:
    carol = provider.people["carol"]
    async with webapp(provider) as client:
        url, verifier, _ = await authorize(client, provider)
        done = await sign_in(client, url, username=carol.email)
        token = await client.fetch_token(
            f"{provider.base_url}/oauth2/token",
            authorization_response=done.headers["location"],
            code_verifier=verifier,
        )
    access = await verified(provider, token["access_token"], audience="pingtai")
    assert access["org"] == provider.orgs["amr"]
    assert sorted(access["roles"]) == ["citizen", "dept_admin"]


async def test_a_public_client_uses_pkce_without_a_secret(provider: Provider) -> None:
    async with AsyncOAuth2Client(
        client_id="mobile",
        scope="openid profile",
        redirect_uri="cn.gov.zj.app:/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        url, verifier, _ = await authorize(client, provider)
        done = await sign_in(client, url, username=provider.people["alice"].phone)
        token = await client.fetch_token(
            f"{provider.base_url}/oauth2/token",
            authorization_response=done.headers["location"],
            code_verifier=verifier,
        )
    assert token["refresh_token"] and token["id_token"]


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(provider: Provider) -> None:
    async with webapp(provider) as client:
        url, verifier, _ = await authorize(client, provider)
        done = await sign_in(client, url, username=provider.people["alice"].phone)
        first = await client.fetch_token(
            f"{provider.base_url}/oauth2/token",
            authorization_response=done.headers["location"],
            code_verifier=verifier,
        )
        second = await client.refresh_token(
            f"{provider.base_url}/oauth2/token", refresh_token=first["refresh_token"]
        )
        assert second["refresh_token"] != first["refresh_token"]
        third = await client.refresh_token(
            f"{provider.base_url}/oauth2/token",
            refresh_token=second["refresh_token"],
            scope="openid profile",
        )
        assert third["scope"] == "openid profile"
        access = await verified(provider, third["access_token"], audience="pingtai")
        assert access["sub"] == provider.people["alice"].id

    async with provider.http() as http:
        secret = ("webapp", provider.secrets["webapp"])

        async def refresh(token: str) -> dict[str, Any]:
            answer = await http.post(
                "/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": token},
                auth=secret,
            )
            body: dict[str, Any] = answer.json()
            return body

        async def active(token: str) -> bool:
            rs = {
                "client_id": "resource-server",
                "client_secret": provider.secrets["resource-server"],
            }
            answer = await http.post("/oauth2/introspect", data={"token": token, **rs})
            return bool(answer.json()["active"])

        assert await active(third["access_token"])
        # The first refresh token comes back: a thief or a bug. The whole family is revoked.
        reused = await refresh(first["refresh_token"])
        assert reused["error"] == "invalid_grant"
        assert (await refresh(third["refresh_token"]))["error"] == "invalid_grant"
        for issued in (first, second, third):
            assert not await active(issued["access_token"])
    assert "pingtai.identity.refresh_token.reused" in await provider.outbox_types()
    assert "pingtai.identity.access_token.revoked" in await provider.outbox_types()


async def test_sign_in_events_are_recorded(provider: Provider) -> None:
    async with webapp(provider) as client:
        url, _, _ = await authorize(client, provider)
        await sign_in(client, url, username=provider.people["alice"].phone, password="wrong-1A")
        await sign_in(client, url, username=provider.people["alice"].phone, password=PASSWORD)
    types = await provider.outbox_types()
    assert "pingtai.identity.signin.failed" in types
    assert "pingtai.identity.signin.succeeded" in types

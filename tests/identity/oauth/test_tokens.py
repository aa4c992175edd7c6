"""Client credentials, key rotation, revocation, introspection, and the admin client registry."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import jwt
from authlib.integrations.httpx_client import AsyncOAuth2Client
from sqlalchemy import update

from services.identity.cli import rotate_signing_keys
from services.identity.ids import utcnow
from services.identity.oauth.keys.models import SigningKey
from tests.identity.oauth.conftest import Provider
from tests.identity.oauth.test_authorization_code import verified


async def client_credentials(
    provider: Provider, client_id: str, *, method: str = "client_secret_basic", **kwargs: Any
) -> dict[str, Any]:
    async with AsyncOAuth2Client(
        client_id=client_id,
        client_secret=provider.secrets[client_id],
        token_endpoint_auth_method=method,
    ) as client:
        token: dict[str, Any] = await client.fetch_token(
            f"{provider.base_url}/oauth2/token", grant_type="client_credentials", **kwargs
        )
    return token


async def introspect(provider: Provider, token: str) -> dict[str, Any]:
    async with provider.http() as http:
        answer = await http.post(
            "/oauth2/introspect",
            data={"token": token},
            auth=("resource-server", provider.secrets["resource-server"]),
        )
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def test_a_department_system_gets_its_org_and_roles(provider: Provider) -> None:
    token = await client_credentials(provider, "amr-system")
    assert "refresh_token" not in token and "id_token" not in token
    claims = await verified(provider, token["access_token"], audience="pingtai")
    assert jwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
    assert claims["sub"] == claims["client_id"] == "amr-system"
    assert claims["org"] == provider.orgs["amr"]
    assert claims["roles"] == ["officer"]
    assert claims["scope"] == "exchange:read workflow:write"
    assert "acr" not in claims
    narrowed = await client_credentials(
        provider, "amr-system", method="client_secret_post", scope="exchange:read"
    )
    assert narrowed["scope"] == "exchange:read"
    described = await introspect(provider, token["access_token"])
    assert described["active"] is True
    assert described["client_id"] == "amr-system" and described["org"] == provider.orgs["amr"]


async def test_rotation_keeps_old_tokens_valid_and_new_ones_verifiable(provider: Provider) -> None:
    before = await client_credentials(provider, "amr-system")
    rotated = await rotate_signing_keys(provider.settings)
    assert len(rotated.new_kids) == 2 and len(rotated.retired_kids) == 2
    after = await client_credentials(provider, "amr-system")
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    new_kid = jwt.get_unverified_header(after["access_token"])["kid"]
    assert old_kid != new_kid and new_kid in rotated.new_kids
    async with provider.http() as http:
        kids = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= kids
    for token in (before, after):
        await verified(provider, token["access_token"], audience="pingtai")
        assert (await introspect(provider, token["access_token"]))["active"] is True

    # Once the old key has been retired longer than any token lives, the next rotation drops it.
    async with provider.database.sessionmaker() as session:
        await session.execute(
            update(SigningKey)
            .where(SigningKey.kid.in_(rotated.retired_kids))
            .values(retired_at=utcnow() - timedelta(hours=2))
        )
        await session.commit()
    again = await rotate_signing_keys(provider.settings)
    assert set(again.dropped_kids) == set(rotated.retired_kids)
    async with provider.http() as http:
        kids = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
    assert old_kid not in kids and new_kid in kids
    assert (await introspect(provider, before["access_token"]))["active"] is False
    assert "pingtai.identity.signing_key.rotated" in await provider.outbox_types()


async def test_a_new_key_is_published_before_it_signs(database_url: str) -> None:
    from tests.identity.oauth.conftest import running_provider

    async with running_provider(database_url, oauth_key_activation_delay_s=3600) as provider:
        before = await client_credentials(provider, "amr-system")
        rotated = await rotate_signing_keys(provider.settings)
        async with provider.http() as http:
            kids = {k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]}
        assert set(rotated.new_kids) <= kids
        after = await client_credentials(provider, "amr-system")
        # Still the old key: the new one only activates after the delay.
        assert (
            jwt.get_unverified_header(after["access_token"])["kid"]
            == jwt.get_unverified_header(before["access_token"])["kid"]
        )


async def test_revoked_and_expired_tokens_are_refused(provider: Provider) -> None:
    admin = await client_credentials(provider, "platform-admin")
    headers = {"Authorization": f"Bearer {admin['access_token']}"}
    async with provider.http() as http:
        assert (await http.get("/v1/clients", headers=headers)).status_code == 200
        revoked = await http.post(
            "/oauth2/revoke",
            data={"token": admin["access_token"], "token_type_hint": "access_token"},
            auth=("platform-admin", provider.secrets["platform-admin"]),
        )
        assert revoked.status_code == 200
        # libs.common.auth's verifier in this process refuses it at once...
        refused = await http.get("/v1/clients", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        # ...and so does introspection, for any resource server.
        assert await introspect(provider, admin["access_token"]) == {"active": False}
        # Revoking someone else's token changes nothing; junk is fine too (RFC 7009).
        other = await client_credentials(provider, "amr-system")
        for token in (other["access_token"], "junk"):
            answer = await http.post(
                "/oauth2/revoke",
                data={"token": token},
                auth=("platform-admin", provider.secrets["platform-admin"]),
            )
            assert answer.status_code == 200
        assert (await introspect(provider, other["access_token"]))["active"] is True

    # An expired token, signed with the provider's own current key.
    key = await provider.app.state.oauth_issuer.ring.signing_key("ES256")
    now = int(time.time())
    expired = jwt.encode(
        {
            "iss": provider.settings.issuer,
            "aud": "pingtai",
            "sub": "amr-system",
            "client_id": "amr-system",
            "iat": now - 600,
            "exp": now - 300,
            "jti": "expired-1",
            "scope": "",
            "roles": ["platform_admin"],
        },
        key.private_key,
        algorithm="ES256",
        headers={"kid": key.kid, "typ": "at+jwt"},
    )
    assert await introspect(provider, expired) == {"active": False}
    async with provider.http() as http:
        answer = await http.get("/v1/clients", headers={"Authorization": f"Bearer {expired}"})
        assert answer.status_code == 401
    assert "pingtai.identity.access_token.revoked" in await provider.outbox_types()


async def test_platform_admins_manage_clients(provider: Provider) -> None:
    admin = await client_credentials(provider, "platform-admin")
    headers = {"Authorization": f"Bearer {admin['access_token']}"}
    async with provider.http(headers=headers) as http:
        created = await http.post(
            "/v1/clients",
            json={
                "client_id": "hz-housing",
                "name": "杭州市住房保障局 系统",
                "grant_types": ["client_credentials"],
                "scopes": ["exchange:read"],
                "org_id": provider.orgs["hrss"],
                "roles": ["officer"],
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        secret = body["client_secret"]
        assert len(secret) > 40
        provider.secrets["hz-housing"] = secret
        token = await client_credentials(provider, "hz-housing")
        claims = await verified(provider, token["access_token"], audience="pingtai")
        assert claims["org"] == provider.orgs["hrss"]

        fetched = (await http.get("/v1/clients/hz-housing")).json()
        assert "client_secret" not in fetched and fetched["enabled"] is True
        page = (await http.get("/v1/clients", params={"limit": 2})).json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = (await http.get("/v1/clients", params={"cursor": page["next_cursor"]})).json()
        ids = [c["client_id"] for c in page["items"] + rest["items"]]
        assert ids == sorted(ids) and "hz-housing" in ids

        updated = await http.patch(
            "/v1/clients/hz-housing", json={"scopes": ["exchange:read", "x:y"]}
        )
        assert updated.json()["scopes"] == ["exchange:read", "x:y"]

        rotated = (await http.post("/v1/clients/hz-housing/secret")).json()
        assert rotated["client_secret"] != secret
        async with provider.http() as plain:
            stale = await plain.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=("hz-housing", secret),
            )
            assert stale.status_code == 401 and stale.json()["error"] == "invalid_client"
            provider.secrets["hz-housing"] = rotated["client_secret"]
            await client_credentials(provider, "hz-housing")

            disabled = await http.post("/v1/clients/hz-housing/disable")
            assert disabled.json()["enabled"] is False
            gone = await plain.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=("hz-housing", rotated["client_secret"]),
            )
            assert gone.status_code == 401

        # Not an admin: 403; no token: 401; bad shapes: 422; unknown: 404.
        officer = await client_credentials(provider, "amr-system")
        forbidden = await http.get(
            "/v1/clients", headers={"Authorization": f"Bearer {officer['access_token']}"}
        )
        assert forbidden.status_code == 403
        async with provider.http() as anonymous:
            assert (await anonymous.get("/v1/clients")).status_code == 401
        for bad in (
            {"name": "x", "grant_types": ["authorization_code"]},  # no redirect URI
            {"name": "x", "grant_types": ["password"]},
            {"name": "x", "grant_types": ["client_credentials"], "client_type": "public"},
            {
                "name": "x",
                "grant_types": ["authorization_code"],
                "redirect_uris": ["http://evil.example/cb"],
            },
            {"name": "x", "grant_types": ["client_credentials"], "roles": ["emperor"]},
            {"name": "x", "grant_types": ["client_credentials"], "unknown": 1},
        ):
            answer = await http.post("/v1/clients", json=bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert (await http.get("/v1/clients/no-such-client")).status_code == 404
        duplicate = await http.post(
            "/v1/clients",
            json={"client_id": "webapp", "name": "x", "grant_types": ["client_credentials"]},
        )
        assert duplicate.status_code == 409
    types = await provider.outbox_types()
    assert "pingtai.identity.client.created" in types
    assert "pingtai.identity.client.secret_rotated" in types


async def test_introspection_needs_a_confidential_client(provider: Provider) -> None:
    token = await client_credentials(provider, "amr-system")
    async with provider.http() as http:
        anonymous = await http.post("/oauth2/introspect", data={"token": token["access_token"]})
        assert anonymous.status_code == 401
        public = await http.post(
            "/oauth2/introspect", data={"token": token["access_token"], "client_id": "mobile"}
        )
        assert public.status_code == 401 and public.json()["error"] == "invalid_client"

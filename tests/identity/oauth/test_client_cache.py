"""Clients cached in memory: a grant needs no query, a change through this process is seen at
once, a change made elsewhere (another replica) within the cache's lifetime."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import update

from services.identity.oauth.clients import cache as clients_cache
from services.identity.oauth.clients.models import OAuthClient
from tests.identity.oauth.conftest import Provider, running_provider


async def _grant(provider: Provider, secret: str) -> int:
    async with provider.http() as http:
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=httpx.BasicAuth("amr-system", secret),
        )
    return response.status_code


async def _admin_token(provider: Provider) -> str:
    async with provider.http() as http:
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=httpx.BasicAuth("platform-admin", provider.secrets["platform-admin"]),
        )
    token: str = response.json()["access_token"]
    return token


async def test_a_rotated_secret_and_a_disabled_client_stop_at_once(provider: Provider) -> None:
    old_secret = provider.secrets["amr-system"]
    assert await _grant(provider, old_secret) == 200  # now cached
    headers = {"Authorization": f"Bearer {await _admin_token(provider)}"}
    async with provider.http(headers=headers) as http:
        rotated = await http.post("/v1/clients/amr-system/secret")
        assert rotated.status_code == 200
        new_secret = rotated.json()["client_secret"]
        assert await _grant(provider, old_secret) == 401
        assert await _grant(provider, new_secret) == 200
        assert (await http.post("/v1/clients/amr-system/disable")).status_code == 200
        assert await _grant(provider, new_secret) == 401
        enabled = await http.patch("/v1/clients/amr-system", json={"enabled": True})
        assert enabled.status_code == 200
        assert await _grant(provider, new_secret) == 200


async def test_a_change_made_elsewhere_is_seen_within_the_ttl(database_url: str) -> None:
    async with running_provider(database_url, oauth_client_cache_ttl_s=0.5) as provider:
        secret = provider.secrets["amr-system"]
        assert await _grant(provider, secret) == 200
        # Another replica disables the client: this process does not hear of it...
        async with provider.database.sessionmaker() as session:
            await session.execute(
                update(OAuthClient)
                .where(OAuthClient.client_id == "amr-system")
                .values(enabled=False)
            )
            await session.commit()
        # ...until its cached copy is older than the TTL.
        await asyncio.sleep(0.6)
        assert await _grant(provider, secret) == 401


def test_the_cache_keeps_copies_for_the_ttl_only() -> None:
    cache = clients_cache.ClientCache(ttl_s=60)
    client = OAuthClient(client_id="c", name="C", grant_types=["client_credentials"], roles=[])
    cache.put(client, loaded_at=0.0)
    assert cache.get("c") is None  # loaded long ago (monotonic 0): already too old
    cache.put(client, loaded_at=time.monotonic())
    copy = cache.get("c")
    assert copy is not None and copy is not client
    assert copy.grant_types == ["client_credentials"] and copy.grant_types is not client.grant_types
    cache.forget("c")
    assert cache.get("c") is None
    off = clients_cache.ClientCache(ttl_s=0)
    off.put(client, loaded_at=time.monotonic())
    assert off.get("c") is None

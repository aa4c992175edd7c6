"""Grants and datasets cached in memory are forgotten in every replica as soon as a change is
announced (broadcasts over a real NATS server), long before their time to live is up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import httpx
import nats
import pytest
from fastapi import FastAPI

from libs.common.auth import JwksCache, TokenVerifier
from libs.common.events import CloudEvent
from libs.common.events.streams import StreamLimits, ensure_stream
from libs.common.migrations import migrate
from pingtai.natsserver import NatsServer
from services.exchange.access.cache import GrantCache
from services.exchange.app import create_app
from services.exchange.settings import ExchangeSettings
from tests.common.events.conftest import nats_server
from tests.common.events.harness import eventually
from tests.exchange.access.conftest import HRSS, PEOPLE, ZHANG_ID, World
from tests.exchange.conftest import ISSUER, Issuer

__all__ = ["nats_server"]

TTL_S = 60.0  # far longer than any wait below: a refusal in time comes from the broadcast
FIELDS = ["region", "status"]  # not personal: a statute is basis enough
BASIS = "statute:《社会保险法》第五十八条"


def _settings(database_url: str, server: NatsServer) -> ExchangeSettings:
    return ExchangeSettings(
        database_url=database_url,
        issuer=ISSUER,
        nats_url=server.url,
        access_grant_cache_ttl_s=TTL_S,
    )


async def _started(
    stack: AsyncExitStack, settings: ExchangeSettings, issuer: Issuer
) -> tuple[FastAPI, httpx.AsyncClient]:
    app = create_app(settings)
    jwks = issuer.jwks()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache("http://jwks.test/jwks.json", client=httpx.AsyncClient(transport=transport)),
    )
    await stack.enter_async_context(app.router.lifespan_context(app))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://exchange")
    await stack.enter_async_context(client)
    return app, client


async def _subscribed(*apps: FastAPI) -> None:
    async def ready() -> bool:
        return all(
            runner.subscribed
            for app in apps
            for runner in app.state.event_bus.broadcast_runners.values()
            if runner.name.startswith("exchange-")
        )

    await eventually(ready, timeout=20, what="the cache broadcasts")


@pytest.fixture
async def exchange_app(
    database_url: str, issuer: Issuer, nats_server: NatsServer
) -> AsyncIterator[FastAPI]:
    """Replica A (the ``world`` fixture's app), on a real NATS server where the catalogue's
    stream exists (the catalogue has started)."""
    await asyncio.to_thread(migrate, "services.exchange", database_url)
    connection = await nats.connect(nats_server.url)
    try:
        await ensure_stream(connection.jetstream(), part="catalog", limits=StreamLimits())
    finally:
        await connection.close()
    async with AsyncExitStack() as stack:
        app, _ = await _started(stack, _settings(database_url, nats_server), issuer)
        yield app


@pytest.fixture
async def replica_b(
    exchange_app: FastAPI, database_url: str, issuer: Issuer, nats_server: NatsServer
) -> AsyncIterator[httpx.AsyncClient]:
    """Replica B: another process of the exchange on the same database."""
    async with AsyncExitStack() as stack:
        app, client = await _started(stack, _settings(database_url, nats_server), issuer)
        await _subscribed(exchange_app, app)
        yield client


async def _read(world: World, client: httpx.AsyncClient) -> httpx.Response:
    return await client.get(
        f"/v1/datasets/{PEOPLE}/records/{ZHANG_ID}",
        params={"purpose": "核验参保", "basis": BASIS, "fields": ",".join(FIELDS)},
        headers=world.system(HRSS),
    )


async def _refused_within(
    world: World, client: httpx.AsyncClient, reason: str, timeout: float
) -> float:
    started = time.monotonic()

    async def refused() -> bool:
        answer = await _read(world, client)
        return answer.status_code == 403 and answer.json()["reason"] == reason

    await eventually(refused, timeout=timeout, what=f"replica B to refuse ({reason})")
    return time.monotonic() - started


async def test_a_revocation_reaches_every_replica_before_the_ttl(
    world: World, replica_b: httpx.AsyncClient
) -> None:
    grant = await world.grant(PEOPLE, HRSS, FIELDS)
    first = await _read(world, replica_b)  # replica B now holds the grant for TTL_S
    assert first.status_code == 200, first.text

    revoked = await world.client.post(
        f"/v1/grants/{grant['id']}/revoke", headers=world.dept_admin(grant["owner_org_id"])
    )
    assert revoked.status_code == 200, revoked.text
    took = await _refused_within(world, replica_b, "grant-revoked", timeout=10)
    assert took < 10 < TTL_S


async def test_a_retirement_from_the_catalogue_reaches_every_replica(
    world: World, replica_b: httpx.AsyncClient, nats_server: NatsServer
) -> None:
    await world.grant(PEOPLE, HRSS, FIELDS)
    assert (await _read(world, replica_b)).status_code == 200
    assert (await _read(world, world.client)).status_code == 200
    connection = await nats.connect(nats_server.url)
    try:
        js = connection.jetstream()
        event = CloudEvent(
            id="retire-people-1", source="/pingtai/catalog",
            type="pingtai.catalog.dataset.retired", time=datetime.now(UTC), subject=PEOPLE,
            data={"dataset_id": PEOPLE, "last_version": 1, "retired_at": datetime.now(UTC)
                  .isoformat()},
        )  # fmt: skip
        await js.publish(event.type, event.to_json(), headers={"Nats-Msg-Id": event.id})
    finally:
        await connection.close()
    for client in (replica_b, world.client):
        await _refused_within(world, client, "dataset-retired", timeout=10)


async def test_a_read_that_began_before_a_change_is_not_kept() -> None:
    """A miss read while a change is forgotten answers, but does not stay in the cache."""
    reads = 0
    release = asyncio.Event()

    class SlowCache(GrantCache):
        async def _read_dataset(self, dataset_id: str) -> None:
            nonlocal reads
            reads += 1
            await release.wait()

    cache = SlowCache(TTL_S, database=None)  # type: ignore[arg-type]  # never reads
    first = asyncio.create_task(cache.dataset("ds-1"))
    second = asyncio.create_task(cache.dataset("ds-1"))  # joins the read in flight
    await asyncio.sleep(0)
    cache.retire("ds-other")  # something changed while the read was in flight
    release.set()
    assert await first is None and await second is None
    assert reads == 1
    release.clear()
    reread = asyncio.create_task(cache.dataset("ds-1"))
    await asyncio.sleep(0.01)
    assert reads == 2  # not kept: read again
    release.set()
    await reread
    assert await cache.dataset("ds-1") is None and reads == 2  # this one was kept

"""A dataset made not shared, end to end over a real NATS server: the catalogue's event reaches
one replica's durable consumer, which revokes the grant; the revocation's event, relayed from
the outbox, makes every replica forget the grant long before its cache entry's time is up."""

from __future__ import annotations

import httpx
import nats

from pingtai.natsserver import NatsServer
from services.exchange.datasets.models import ExchangeDataset
from tests.exchange.access.conftest import HRSS, PEOPLE, World
from tests.exchange.access.test_cache_broadcast import (
    FIELDS,
    TTL_S,
    _read,
    _refused_within,
    exchange_app,
    nats_server,
    replica_b,
)
from tests.exchange.access.test_catalogue_revocation import next_version_event

__all__ = ["exchange_app", "nats_server", "replica_b"]


async def test_a_dataset_made_not_shared_is_refused_by_every_replica(
    world: World, replica_b: httpx.AsyncClient, nats_server: NatsServer
) -> None:
    grant = await world.grant(PEOPLE, HRSS, FIELDS)
    for client in (replica_b, world.client):  # both replicas now hold the grant for TTL_S
        assert (await _read(world, client)).status_code == 200
    async with world.app.state.database.sessionmaker() as session:
        held = await session.get(ExchangeDataset, PEOPLE)
        assert held is not None
    event = next_version_event(held, share_type="not_shared", not_open_reason="不予共享")
    connection = await nats.connect(nats_server.url)
    try:
        await connection.jetstream().publish(
            event.type, event.to_json(), headers={"Nats-Msg-Id": event.id}
        )
    finally:
        await connection.close()
    for client in (replica_b, world.client):
        took = await _refused_within(world, client, "grant-revoked", timeout=10)
        assert took < 10 < TTL_S
    view = await world.client.get(f"/v1/grants/{grant['id']}", headers=world.platform_admin())
    assert view.json()["status"] == "revoked"
    assert view.json()["revoke_reason"].startswith("dataset-not-shared")
    last = (await world.ledger())[-1]
    assert (last.outcome, last.reason) == ("refused", "grant-revoked")

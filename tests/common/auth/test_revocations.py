"""Identity's revocation events make every process of every part deny the token at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import nats
import pytest
from fastapi import APIRouter, FastAPI
from nats.aio.client import Client as NatsClient
from nats.js.api import DeliverPolicy
from prometheus_client import REGISTRY
from pydantic_settings import SettingsConfigDict

from libs.common.app import create_service_app
from libs.common.auth import CurrentPrincipal
from libs.common.auth.revocations import BROADCAST_NAME, AccessTokensRevoked
from libs.common.database import Database, new_metadata
from libs.common.events import (
    EventBus,
    StreamLimits,
    define_event_tables,
    ensure_stream,
    new_event,
    stream_name,
)
from libs.common.events.broadcasts import BroadcastRunner
from libs.common.events.connection import NatsLink
from libs.common.events.envelope import MSG_ID_HEADER
from libs.common.settings import PartSettings
from pingtai.natsserver import NatsServer
from tests.common.auth.conftest import ISSUER, JwksServer, SigningKey, claims, sign
from tests.common.events.harness import eventually

PART = "permits"
IDENTITY_STREAM = stream_name("identity")
# Far below the 300 s a token lives: "at once" means about a second.
DENIED_WITHIN_S = 2.0

metadata = new_metadata()
define_event_tables(metadata)

router = APIRouter()


@router.get("/v1/me")
async def me(principal: CurrentPrincipal) -> dict[str, str]:
    return {"sub": principal.sub}


class PermitsSettings(PartSettings):
    """A part that exists only in these tests."""

    part: ClassVar[str] = PART

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_PERMITS_", extra="ignore", populate_by_name=True
    )


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@dataclass
class Token:
    value: str
    jti: str
    expires_at: datetime


@dataclass
class Replica:
    app: FastAPI
    bus: EventBus
    client: httpx.AsyncClient

    async def status(self, token: Token) -> int:
        response = await self.client.get(
            "/v1/me", headers={"Authorization": f"Bearer {token.value}"}
        )
        return response.status_code

    async def denies(self, token: Token) -> bool:
        response = await self.client.get(
            "/v1/me", headers={"Authorization": f"Bearer {token.value}"}
        )
        if response.status_code != 401:
            return False
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert response.json()["detail"] == "The access token has been revoked."
        return True


@dataclass
class Rig:
    """A NATS server, an issuer and its JWKS, and replicas of a part started on demand."""

    nats: NatsServer
    key: SigningKey
    jwks: JwksServer
    tmp_path: Path
    stack: AsyncExitStack

    def token(self) -> Token:
        payload = claims()
        return Token(
            sign(self.key, payload), payload["jti"], datetime.fromtimestamp(payload["exp"], UTC)
        )

    async def start_replica(self, **settings: Any) -> Replica:
        url = f"sqlite+aiosqlite:///{self.tmp_path}/{PART}-{uuid.uuid4().hex[:8]}.db"
        schema = Database(url)
        async with schema.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        await schema.dispose()
        part_settings = PermitsSettings(
            database_url=url,
            nats_url=self.nats.url,
            issuer=ISSUER,
            auth_jwks_url=self.jwks.url,
            **settings,
        )
        bus = EventBus(part_settings)
        app = create_service_app(
            part_settings,
            title="Permits",
            description="A part for testing revocations.",
            routers=[router],
            configure_process=False,
            events=bus,
        )
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://permits")
        await self.stack.enter_async_context(client)
        return Replica(app, bus, client)

    @asynccontextmanager
    async def identity(self) -> AsyncIterator[NatsClient]:
        """A NATS connection standing for identity, which declares its stream and publishes."""
        connection = await nats.connect(self.nats.url)
        try:
            yield connection
        finally:
            await connection.close()


async def declare_identity_stream(connection: NatsClient) -> None:
    await ensure_stream(connection.jetstream(), part="identity", limits=StreamLimits())


async def publish_revocation(connection: NatsClient, *tokens: Token) -> None:
    """What identity's relay publishes when it revokes ``tokens``."""
    event = new_event(
        AccessTokensRevoked(jtis=[t.jti for t in tokens], until=max(t.expires_at for t in tokens)),
        subject=tokens[0].jti,
    )
    # Identity's event carries a reason too; readers ignore fields they do not know.
    event.data = {**(event.data or {}), "reason": "revoked"}
    ack = await connection.jetstream().publish(
        event.type, event.to_json(), stream=IDENTITY_STREAM, headers={MSG_ID_HEADER: event.id}
    )
    assert ack.stream == IDENTITY_STREAM


async def denied_within(replicas: list[Replica], token: Token, timeout: float) -> float:
    """Seconds until every replica denies ``token``; fails after ``timeout``."""
    started = time.monotonic()

    async def all_deny() -> bool:
        return all([await r.denies(token) for r in replicas])

    await eventually(all_deny, timeout=timeout, what="every replica to deny the token")
    return time.monotonic() - started


def applied(part: str = PART) -> float:
    value = REGISTRY.get_sample_value("pingtai_auth_revocations_applied_total", {"part": part})
    return value or 0.0


async def wait_subscribed(*replicas: Replica) -> None:
    """Until each replica's revocation consumer exists, so what comes next is live, not replayed."""

    async def subscribed() -> bool:
        return all(r.bus.broadcast_runners[BROADCAST_NAME].subscribed for r in replicas)

    await eventually(subscribed, timeout=10, what="the revocation consumers")


@pytest.fixture
async def rig(
    nats_server: NatsServer, jwks_server: JwksServer, rsa_key: SigningKey, tmp_path: Path
) -> AsyncIterator[Rig]:
    jwks_server.keys = [rsa_key]
    async with AsyncExitStack() as stack:
        yield Rig(nats_server, rsa_key, jwks_server, tmp_path, stack)


async def test_every_replica_denies_a_revoked_token_within_a_second(rig: Rig) -> None:
    async with rig.identity() as identity:
        await declare_identity_stream(identity)
        replicas = [await rig.start_replica(), await rig.start_replica()]
        revoked, other = rig.token(), rig.token()
        await wait_subscribed(*replicas)
        before = [await r.status(revoked) for r in replicas]
        counted = applied()

        await publish_revocation(identity, revoked)
        took = await denied_within(replicas, revoked, timeout=DENIED_WITHIN_S + 8)

        still = [await r.status(other) for r in replicas]

    assert before == [200, 200]
    assert took < DENIED_WITHIN_S
    assert still == [200, 200]
    # One denial per replica; both replicas are the same part in this process.
    assert applied() - counted == 2


async def test_a_replica_started_after_the_revocation_still_denies_the_token(rig: Rig) -> None:
    async with rig.identity() as identity:
        await declare_identity_stream(identity)
        revoked, other = rig.token(), rig.token()
        await publish_revocation(identity, revoked)

        late = await rig.start_replica()
        # The replay happens as soon as it connects, before any revocation is new.
        await denied_within([late], revoked, timeout=DENIED_WITHIN_S + 8)
        still = await late.status(other)

    assert still == 200


async def test_identity_stream_missing_at_start_up_then_created(rig: Rig) -> None:
    replica = await rig.start_replica()
    revoked = rig.token()
    before = await replica.status(revoked)
    # Identity has not started: the replica retries with backoff, and keeps serving meanwhile.
    await eventually(lambda: _connected(replica), timeout=10, what="the replica to connect to NATS")
    subscribed_without_stream = replica.bus.broadcast_runners[BROADCAST_NAME].subscribed

    async with rig.identity() as identity:
        await declare_identity_stream(identity)
        # A junk message on the subject is skipped; the revocation after it is applied.
        await identity.jetstream().publish(
            "pingtai.identity.access_token.revoked", b"not an event", stream=IDENTITY_STREAM
        )
        await publish_revocation(identity, revoked)
        await denied_within([replica], revoked, timeout=DENIED_WITHIN_S + 8)

    assert before == 200
    assert subscribed_without_stream is False
    runner = replica.bus.broadcast_runners[BROADCAST_NAME]
    assert runner.counts["failed"] == 1


async def _connected(replica: Replica) -> bool:
    return replica.bus.connected


async def test_revocations_after_a_nats_restart_are_still_applied(rig: Rig) -> None:
    async with rig.identity() as identity:
        await declare_identity_stream(identity)
    replica = await rig.start_replica()
    await wait_subscribed(replica)
    runner = replica.bus.broadcast_runners[BROADCAST_NAME]
    first = runner.consumer

    rig.nats.stop()
    rig.nats.start()  # same port, same store: the stream is kept, the ephemeral consumer is not

    async def subscribed_again() -> bool:
        return runner.subscribed and runner.consumer != first

    await eventually(subscribed_again, timeout=10, what="a new revocation consumer")
    revoked = rig.token()
    async with rig.identity() as identity:
        await publish_revocation(identity, revoked)
        took = await denied_within([replica], revoked, timeout=DENIED_WITHIN_S + 8)

    assert took < DENIED_WITHIN_S


async def test_a_replica_that_stops_deletes_its_consumer(rig: Rig) -> None:
    async with rig.identity() as identity:
        await declare_identity_stream(identity)
        replica = await rig.start_replica()
        await wait_subscribed(replica)
        during = await identity.jetstream().consumers_info(IDENTITY_STREAM)
        mine = replica.bus.broadcast_runners[BROADCAST_NAME].consumer

        await rig.stack.aclose()

        after = await identity.jetstream().consumers_info(IDENTITY_STREAM)

    assert [c.name for c in during] == [mine]
    assert during[0].config.durable_name is None
    assert after == []


def test_each_process_replays_the_revocations_of_tokens_still_valid() -> None:
    settings = PermitsSettings()
    bus = EventBus(settings)
    create_service_app(
        settings,
        title="Permits",
        description="A part for testing revocations.",
        configure_process=False,
        events=bus,
    )
    (broadcast,) = bus.broadcasts
    link = NatsLink(url="nats://127.0.0.1:4222", name="never-connected")
    runner = BroadcastRunner(part=PART, broadcast=broadcast, link=link)
    now = datetime.now(UTC)

    config = runner.consumer_config(name="permits-auth-revocations-1", now=now)

    assert broadcast.subjects == ["pingtai.identity.access_token.revoked"]
    assert broadcast.stream == IDENTITY_STREAM
    # Ephemeral (no durable name), from the longest token lifetime plus the leeway ago.
    assert config.durable_name is None
    assert config.deliver_policy == DeliverPolicy.BY_START_TIME
    assert config.opt_start_time == now - timedelta(seconds=600)
    assert settings.auth_revocation_replay_s == 600
    assert config.ack_policy == "none"

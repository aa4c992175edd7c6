"""The outbox relay and the ledger's batch events: closely following commits share a round."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from nats.js.api import PubAck

from libs.common.database import Database
from libs.common.events.connection import NatsLink
from libs.common.events.relay import OutboxRelay
from tests.common.events.harness import eventually
from tests.exchange.ledger.conftest import MakeLedger, record


class _JetStream:
    """Acknowledges every publish at once and keeps the subjects."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def publish_async(self, subject: str, payload: bytes, **_: Any) -> asyncio.Future[PubAck]:
        self.subjects.append(subject)
        acked: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        acked.set_result(PubAck(stream="EXCHANGE", seq=len(self.subjects)))
        return acked


class _Link:
    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()
        self.js = _JetStream()


async def test_batches_committed_close_together_share_a_relay_round(
    database: Database, make_ledger: MakeLedger
) -> None:
    ledger = await make_ledger(commit_delay_s=0)
    link = _Link()

    def relay() -> OutboxRelay:
        # Coalescing longer than the test: only the first wake after a quiet spell publishes.
        return OutboxRelay(
            part="exchange",
            link=cast(NatsLink, link),
            sessionmaker=database.sessionmaker,
            coalesce_s=3600.0,
        )

    first, stop = relay(), asyncio.Event()
    running = asyncio.create_task(first.run(stop))
    try:
        await ledger.append(record(1))

        async def published_first() -> bool:
            return first.stats.rounds == 1

        await eventually(published_first, what="the first batch's event, at once")
        for n in range(2, 6):  # four more commits, each waking the relay
            await ledger.append(record(n))
        for _ in range(50):
            await asyncio.sleep(0)
        assert (first.stats.rounds, len(link.js.subjects)) == (1, 1)  # no round per commit
    finally:
        stop.set()
        await running
    assert ledger.batches == 5
    # Nothing is lost meanwhile: the events wait in the outbox, and one round publishes them.
    assert await relay().relay_once() == 4
    assert link.js.subjects == ["pingtai.exchange.access.batch_recorded"] * 5

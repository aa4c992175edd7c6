"""The outbox relay: publishes committed events to JetStream, in order, and marks them sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.events import outbox, repository
from libs.common.events.connection import (
    BACKOFF_MAX_S,
    BACKOFF_MIN_S,
    NatsLink,
    sleep_unless,
    wait_any,
)
from libs.common.events.envelope import MSG_ID_HEADER
from libs.common.events.metrics import EVENTS_PUBLISHED, OUTBOX_PENDING, RELAY_FAILURES
from libs.common.events.repository import OutboxRow

log = structlog.get_logger("pingtai.events.relay")


class PublishFailed(Exception):
    """JetStream did not acknowledge some events; they stay in the outbox for the next round."""


@dataclass
class RelayStats:
    """What this relay published since it started."""

    stored: int = 0
    duplicates: int = 0
    rounds: int = 0


class OutboxRelay:
    """Publishes the outbox of one database; run one per process (PostgreSQL elects one anyway)."""

    def __init__(
        self,
        *,
        part: str,
        link: NatsLink,
        sessionmaker: async_sessionmaker[AsyncSession],
        batch: int = 500,
        poll_s: float = 5.0,
        publish_timeout_s: float = 5.0,
        coalesce_s: float = 0.01,
    ) -> None:
        self.part = part
        self.link = link
        self.sessionmaker = sessionmaker
        self.batch = batch
        self.poll_s = poll_s
        self.publish_timeout_s = publish_timeout_s
        # A round (a transaction: select, publish, await the acks, mark sent) costs more CPU
        # than a small commit; a part committing events hundreds of times a second would pay
        # one per commit (the exchange ledger's batches: docs/exchange-ledger.md, Events).
        # A round starts at least ``coalesce_s`` after the last one that published (a wake
        # after a quiet spell, an empty round or a full batch runs at once): the commits in
        # between share one round. Nothing waits anywhere but in the outbox.
        self.coalesce_s = coalesce_s
        self.stats = RelayStats()
        self._published = EVENTS_PUBLISHED.labels(part, "stored")
        self._duplicates = EVENTS_PUBLISHED.labels(part, "duplicate")

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set: promptly after a commit (commits closer together than
        ``coalesce_s`` share a round), and every ``poll_s``."""
        wakeup = asyncio.Event()
        forget = outbox.on_commit(wakeup)
        backoff = BACKOFF_MIN_S
        loop = asyncio.get_running_loop()
        last_round = -self.coalesce_s  # when the last round that published, not a full batch, began
        try:
            while not stop.is_set():
                if not self.link.ready.is_set():
                    await wait_any([stop, self.link.ready], timeout=self.poll_s)
                    continue
                early = last_round + self.coalesce_s - loop.time()
                if early > 0:  # coalesce the wakes of commits that follow each other closely
                    await sleep_unless(stop, early)
                    if stop.is_set():
                        break
                wakeup.clear()  # before the round's select: a later commit wakes it again
                started = loop.time()
                try:
                    published = await self.relay_once()
                except Exception as exc:  # NATS away or the database busy: retry, slower each time
                    RELAY_FAILURES.labels(self.part).inc()
                    log.warning("relay_failed", error=repr(exc), retry_in_s=backoff)
                    if isinstance(exc, NoStreamResponseError):
                        await self.link.declare()
                    await sleep_unless(stop, backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = BACKOFF_MIN_S
                # Nothing published (the next commit's events go at once) or a full batch (more
                # wait): no coalescing before the next round.
                last_round = started if 0 < published < self.batch else -self.coalesce_s
                if published < self.batch:
                    # The safety poll covers commits made by other processes.
                    await wait_any([stop, wakeup], timeout=self.poll_s)
        finally:
            forget()

    async def relay_once(self) -> int:
        """Publish one batch of pending events; returns how many JetStream acknowledged."""
        failure: BaseException | None = None
        async with self.sessionmaker() as session, session.begin():
            if not await repository.try_lock_relay(session):
                return 0
            rows = await repository.pending_events(session, limit=self.batch)
            if not rows:
                OUTBOX_PENDING.labels(self.part).set(0)
                return 0
            acked, failure = await self._publish(rows)
            await repository.mark_sent(session, positions=acked, at=datetime.now(UTC))
        self.stats.rounds += 1
        if len(rows) < self.batch:
            OUTBOX_PENDING.labels(self.part).set(len(rows) - len(acked))
        if failure is not None:
            raise PublishFailed(f"{len(rows) - len(acked)} event(s) not published") from failure
        return len(acked)

    async def _publish(self, rows: Sequence[OutboxRow]) -> tuple[list[int], BaseException | None]:
        """Publish ``rows`` with many in flight, never two of one ordering key at once.

        Rows go out in waves: the first pending row of every key, then the second, ... An
        aggregate's next event leaves only once JetStream stored the previous one, so a failure
        cannot reorder an aggregate's events; the first failing wave ends the round.
        """
        acked: list[int] = []
        remaining = list(rows)
        while remaining:
            wave: list[OutboxRow] = []
            later: list[OutboxRow] = []
            keys: set[str] = set()
            for row in remaining:
                (later if row.ordering_key in keys else wave).append(row)
                keys.add(row.ordering_key)
            failure = await self._publish_wave(wave, acked)
            if failure is not None:
                return acked, failure
            remaining = later
        return acked, None

    async def _publish_wave(
        self, wave: Sequence[OutboxRow], acked: list[int]
    ) -> BaseException | None:
        js = self.link.js
        futures: list[asyncio.Future[PubAck]] = []
        failure: BaseException | None = None
        for row in wave:
            headers = json.loads(row.headers)
            # JetStream drops a second publish of the same id inside the duplicate window.
            headers[MSG_ID_HEADER] = row.event_id
            try:
                futures.append(await js.publish_async(row.subject, row.payload, headers=headers))
            except Exception as exc:  # disconnected mid-wave: publish the rest next round
                failure = exc
                break
        if futures:
            await asyncio.wait(futures, timeout=self.publish_timeout_s)
        for row, future in zip(wave, futures, strict=False):
            if not future.done():
                future.cancel()
                failure = failure or TimeoutError("JetStream did not acknowledge in time")
                continue
            if future.cancelled():
                failure = failure or TimeoutError("publish cancelled")
                continue
            error = future.exception()
            if error is not None:
                failure = failure or error
                continue
            acked.append(row.position)
            if future.result().duplicate:
                self.stats.duplicates += 1
                self._duplicates.inc()
            else:
                self.stats.stored += 1
                self._published.inc()
        return failure

"""``EventBus``: a part's NATS connection, stream, outbox relay and consumers, run by its app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import structlog

from libs.common.database import Database
from libs.common.events import repository
from libs.common.events.broadcasts import Broadcast, BroadcastRunner
from libs.common.events.connection import NatsLink, sleep_unless
from libs.common.events.consumers import ConsumerOptions, ConsumerRunner, Subscription
from libs.common.events.metrics import OUTBOX_PENDING
from libs.common.events.relay import OutboxRelay
from libs.common.events.streams import StreamLimits, ensure_stream
from libs.common.health import ReadinessCheck
from libs.common.settings import PartSettings

log = structlog.get_logger("pingtai.events")

PRUNE_EVERY_S = 60.0
SHUTDOWN_TIMEOUT_S = 10.0


class EventsUnavailable(Exception):
    """NATS is down or not configured: events wait in the outbox."""


class EventBus:
    """Everything a part needs to publish and consume events; give it to ``create_service_app``.

    At start-up it connects to ``settings.nats_url`` in the background (start-up never waits for
    NATS), declares the part's stream ``PINGTAI_<PART>``, and runs the outbox relay, one task per
    subscription and per broadcast, and the pruning of old outbox and inbox rows. At shutdown it
    finishes the batches in hand, acknowledges them and drains the connection.
    """

    def __init__(
        self,
        settings: PartSettings,
        *,
        subscriptions: Sequence[Subscription] = (),
        broadcasts: Sequence[Broadcast] = (),
        nats_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.part = settings.part
        self.subscriptions = list(subscriptions)
        self.nats_url = nats_url or settings.nats_url
        self.limits = StreamLimits.from_settings(settings)
        names = [s.durable for s in self.subscriptions]
        if len(names) != len(set(names)):
            raise ValueError(f"durable consumer names must be unique: {names}")
        self.broadcasts: list[Broadcast] = []
        for broadcast in broadcasts:
            self.add_broadcast(broadcast)
        self.link: NatsLink | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: dict[str, ConsumerRunner] = {}
        self.broadcast_runners: dict[str, BroadcastRunner] = {}

    def add_broadcast(self, broadcast: Broadcast) -> None:
        """Also run ``broadcast`` (before the bus starts): every process sees its events."""
        if any(b.name == broadcast.name for b in self.broadcasts):
            raise ValueError(f"broadcast names must be unique: {broadcast.name!r} is taken")
        self.broadcasts.append(broadcast)

    @property
    def connected(self) -> bool:
        """Whether NATS answers and the stream is declared."""
        return self.link is not None and self.link.ready.is_set() and self.link.is_connected

    def readiness_check(self, database: Database) -> ReadinessCheck:
        """A non-critical "nats" check: NATS down degrades the part, the outbox keeps events."""

        async def probe() -> str:
            async with database.sessionmaker() as session:
                pending = await repository.count_pending(session)
            OUTBOX_PENDING.labels(self.part).set(pending)
            held = f"the outbox holds {pending} event(s)"
            if not self.nats_url:
                raise EventsUnavailable(f"NATS is not configured (PINGTAI_NATS_URL); {held}")
            if not self.connected:
                raise EventsUnavailable(f"NATS is down ({self.nats_url}); {held}")
            return f"connected; {held}"

        return ReadinessCheck("nats", probe, critical=False)

    @asynccontextmanager
    async def running(self, database: Database) -> AsyncIterator[EventBus]:
        """Run the bus for the duration of the block (an app's lifespan)."""
        if not self.nats_url:
            log.warning("nats_not_configured", part=self.part)
            yield self
            return
        stop = asyncio.Event()
        settings = self.settings
        self.link = NatsLink(
            url=self.nats_url, name=settings.service_name, on_connect=self._declare_stream
        )
        self.relay = OutboxRelay(
            part=self.part,
            link=self.link,
            sessionmaker=database.sessionmaker,
            batch=settings.events_relay_batch,
            poll_s=settings.events_relay_poll_s,
            coalesce_s=settings.events_relay_coalesce_s,
            publish_timeout_s=settings.events_publish_timeout_s,
        )
        options = ConsumerOptions(
            batch=settings.events_consumer_batch,
            ack_wait_s=settings.events_ack_wait_s,
            max_deliveries=settings.events_max_deliveries,
            retry_delay_s=settings.events_retry_delay_s,
        )
        self.consumers = {
            s.durable: ConsumerRunner(
                part=self.part,
                subscription=s,
                link=self.link,
                sessionmaker=database.sessionmaker,
                options=options,
            )
            for s in self.subscriptions
        }
        self.broadcast_runners = {
            b.name: BroadcastRunner(part=self.part, broadcast=b, link=self.link)
            for b in self.broadcasts
        }
        tasks = [
            asyncio.create_task(self.link.run(stop), name="events-connect"),
            asyncio.create_task(self.relay.run(stop), name="events-relay"),
            asyncio.create_task(self._prune(database, stop), name="events-prune"),
            *(
                asyncio.create_task(c.run(stop), name=f"events-consumer-{name}")
                for name, c in self.consumers.items()
            ),
            *(
                asyncio.create_task(b.run(stop), name=f"events-broadcast-{name}")
                for name, b in self.broadcast_runners.items()
            ),
        ]
        try:
            yield self
        finally:
            stop.set()
            _, lingering = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_S)
            for task in lingering:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.link.close()

    async def _declare_stream(self) -> None:
        assert self.link is not None
        await ensure_stream(self.link.js, part=self.part, limits=self.limits)

    async def _prune(self, database: Database, stop: asyncio.Event) -> None:
        """Delete sent outbox rows and old inbox rows past their retention, once a minute."""
        while not stop.is_set():
            now = datetime.now(UTC)
            try:
                async with database.sessionmaker() as session, session.begin():
                    await repository.prune_sent(
                        session,
                        sent_before=now
                        - timedelta(seconds=self.settings.events_outbox_retention_s),
                    )
                    await repository.prune_inbox(
                        session,
                        handled_before=now
                        - timedelta(seconds=self.settings.events_inbox_retention_s),
                    )
            except Exception as exc:  # the next round tries again
                log.warning("events_prune_failed", error=repr(exc))
            await sleep_unless(stop, PRUNE_EVERY_S)

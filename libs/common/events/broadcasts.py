"""Broadcast subscriptions: every process of a part sees every event on some subjects.

A durable consumer shares a part's events among its replicas, so each event is applied once, by
one of them. State a process holds in memory (a denylist, a cache) needs the opposite: every
process sees every event. A broadcast runs one ephemeral consumer per process, which replays the
last ``replay_s`` seconds of the stream whenever it subscribes, so a process that starts late or
was cut off from NATS catches up. There is no database and no inbox: the handler must be
idempotent, because a replay delivers events again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from libs.common.events.connection import (
    BACKOFF_MAX_S,
    BACKOFF_MIN_S,
    NatsLink,
    sleep_unless,
    wait_any,
)
from libs.common.events.envelope import (
    CloudEvent,
    check_token,
    part_of,
    stream_name,
    trace_context,
)
from libs.common.events.metrics import EVENTS_HANDLED

log = structlog.get_logger("pingtai.events.broadcast")
tracer = trace.get_tracer("pingtai.events")

BroadcastHandler = Callable[[CloudEvent], Awaitable[None]]

FETCH_TIMEOUT_S = 1.0
FETCH_BATCH = 100
# The server deletes a consumer nobody pulled from for this long: the consumer of a process that
# died without saying goodbye. A live process pulls at least every FETCH_TIMEOUT_S.
INACTIVE_THRESHOLD_S = 30.0
DELETE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Broadcast:
    """Every process of the part runs ``handler`` on every event on ``subjects``.

    At start-up, and again after each reconnection to NATS, the events of the last ``replay_s``
    seconds are delivered again (0: only new ones). The handler gets the event alone, no
    session; it must be idempotent and should not block. An event it raises on is logged and
    skipped: nothing acknowledges it, nothing delivers it again.
    """

    name: str
    subjects: Sequence[str]
    handler: BroadcastHandler
    replay_s: float = 0.0

    def __post_init__(self) -> None:
        check_token(self.name, what="broadcast name")
        if not self.subjects:
            raise ValueError("a broadcast needs at least one subject")
        if len({part_of(s) for s in self.subjects}) != 1:
            raise ValueError("a broadcast's subjects must all belong to one part's stream")
        if self.replay_s < 0:
            raise ValueError("replay_s cannot be negative")

    @property
    def stream(self) -> str:
        """The stream the subjects live in."""
        return stream_name(part_of(self.subjects[0]))


class BroadcastRunner:
    """Pulls a broadcast's events from a per-process ephemeral consumer and hands them over."""

    def __init__(self, *, part: str, broadcast: Broadcast, link: NatsLink) -> None:
        self.part = part
        self.broadcast = broadcast
        self.link = link
        # Events by outcome since start: applied, failed.
        self.counts: Counter[str] = Counter()
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._consumer: str | None = None
        # The link's generation (its connection) the subscription was made on.
        self._generation = -1

    @property
    def name(self) -> str:
        return self.broadcast.name

    @property
    def consumer(self) -> str | None:
        """The name of this process's consumer on the server, while subscribed."""
        return self._consumer

    @property
    def subscribed(self) -> bool:
        """Whether this process's consumer exists and is being pulled from."""
        return self._subscription is not None

    def consumer_config(self, *, name: str, now: datetime) -> ConsumerConfig:
        """An ephemeral consumer from ``now - replay_s``, acknowledging nothing."""
        subjects = list(self.broadcast.subjects)
        replay_s = self.broadcast.replay_s
        return ConsumerConfig(
            name=name,
            description=f"{self.part}: broadcast {self.name} to one process",
            deliver_policy=DeliverPolicy.BY_START_TIME if replay_s else DeliverPolicy.NEW,
            opt_start_time=now - timedelta(seconds=replay_s) if replay_s else None,
            # Nothing to acknowledge: a lost event is replayed at the next subscription, and an
            # event the handler failed on would fail again.
            ack_policy=AckPolicy.NONE,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
            inactive_threshold=INACTIVE_THRESHOLD_S,
            mem_storage=True,
        )

    async def subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        """Create this process's ephemeral consumer and bind a pull subscription to it."""
        stream = self.broadcast.stream
        name = f"{self.part}-{self.name}-{uuid.uuid4().hex[:12]}"
        await js.add_consumer(stream, self.consumer_config(name=name, now=datetime.now(UTC)))
        self._consumer = name
        return await js.pull_subscribe_bind(name, stream=stream)

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and handle events until ``stop``; then delete the consumer."""
        try:
            await self._pull(stop)
        finally:
            await self._unsubscribe()

    async def _pull(self, stop: asyncio.Event) -> None:
        backoff = BACKOFF_MIN_S
        while not stop.is_set():
            if not self.link.ready.is_set():
                await wait_any([stop, self.link.ready], timeout=FETCH_TIMEOUT_S)
                continue
            if self._subscription is not None and self._generation != self.link.generation:
                # A new connection: the server may have lost the consumer, and what it sent
                # while we were away is gone (nothing is acknowledged). Subscribe again, replaying.
                await self._unsubscribe()
            if self._subscription is None:
                generation = self.link.generation
                try:
                    self._subscription = await self.subscribe(self.link.js)
                except Exception as exc:  # the stream's part has not started yet, NATS away
                    # A missing stream is expected until its part first starts: not a warning.
                    level = log.info if isinstance(exc, NotFoundError) else log.warning
                    level(
                        "broadcast_subscribe_failed",
                        broadcast=self.name,
                        stream=self.broadcast.stream,
                        error=repr(exc),
                        retry_in_s=backoff,
                    )
                    await sleep_unless(stop, backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                self._generation = generation
                log.info("broadcast_subscribed", broadcast=self.name, consumer=self._consumer)
            try:
                msgs = await self._subscription.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT_S)
            except TimeoutError:  # nothing new
                continue
            except Exception as exc:  # the consumer is gone (503), NATS away: subscribe again
                log.warning(
                    "broadcast_fetch_failed",
                    broadcast=self.name,
                    error=repr(exc),
                    retry_in_s=backoff,
                )
                await self._unsubscribe()
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            backoff = BACKOFF_MIN_S
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        outcome = "applied"
        with tracer.start_as_current_span(
            f"{msg.subject} process",
            context=trace_context(msg.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "process",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": self.name,
            },
        ):
            try:
                await self.broadcast.handler(CloudEvent.from_json(msg.data))
            except Exception as exc:  # trying again would fail again: log it and go on
                outcome = "failed"
                log.warning(
                    "broadcast_handler_failed",
                    broadcast=self.name,
                    subject=msg.subject,
                    sequence=msg.metadata.sequence.stream,
                    error=f"{type(exc).__name__}: {exc}",
                )
        self.counts[outcome] += 1
        EVENTS_HANDLED.labels(self.part, self.name, outcome).inc()

    async def _unsubscribe(self) -> None:
        """Leave the pull subscription and delete the consumer (else the server drops it idle)."""
        subscription, self._subscription = self._subscription, None
        consumer, self._consumer = self._consumer, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # the subscription or the connection is gone already
                log.info("broadcast_unsubscribe_failed", broadcast=self.name, error=repr(exc))
        if consumer is not None and self.link.is_connected:
            try:
                await asyncio.wait_for(
                    self.link.js.delete_consumer(self.broadcast.stream, consumer),
                    timeout=DELETE_TIMEOUT_S,
                )
            except Exception as exc:  # gone with a server restart, or NATS away: it expires
                log.info("broadcast_delete_failed", consumer=consumer, error=repr(exc))

"""Durable pull consumers: each event handled once, in the service's own transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.events import outbox, repository
from libs.common.events.connection import (
    BACKOFF_MAX_S,
    BACKOFF_MIN_S,
    NatsLink,
    sleep_unless,
    wait_any,
)
from libs.common.events.envelope import (
    MSG_ID_HEADER,
    CloudEvent,
    check_token,
    dead_letter_type,
    part_of,
    stream_name,
    trace_context,
)
from libs.common.events.metrics import CONSUMER_LAG, EVENTS_HANDLED

log = structlog.get_logger("pingtai.events.consumer")
tracer = trace.get_tracer("pingtai.events")

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[CloudEvent]], Awaitable[None]]

FETCH_TIMEOUT_S = 1.0
# How long a batch's acknowledgements may take to reach the server (whole seconds: nats-py).
ACK_TIMEOUT_S = 5
MAX_RETRY_DELAY_S = 60.0
# Reasons of recent failures, kept to explain a dead letter; bounded so a storm cannot grow it.
LAST_ERRORS_KEPT = 1000


@dataclass(frozen=True)
class Subscription:
    """A durable consumer named ``durable``: ``handler`` runs once for each event on ``subjects``.

    The handler gets the session of a transaction that also records the event as handled; it must
    not commit. It may raise to have the event delivered again, up to ``max_deliveries`` times;
    then the event goes to the dead-letter subject ``pingtai.<part>.deadletter.<durable>``.

    ``batch_handler`` instead of ``handler`` gets all new events of a fetched batch at once (in
    order), for projections that write many rows in one statement; if it raises, it is called
    again with one event at a time to find the failing one.
    """

    durable: str
    subjects: Sequence[str]
    handler: Handler | None = None
    batch_handler: BatchHandler | None = None
    max_deliveries: int | None = None
    ack_wait_s: float | None = None

    def __post_init__(self) -> None:
        check_token(self.durable, what="durable consumer name")
        if (self.handler is None) == (self.batch_handler is None):
            raise ValueError("a subscription needs either a handler or a batch_handler")
        if not self.subjects:
            raise ValueError("a subscription needs at least one subject")
        parts = {part_of(s) for s in self.subjects}
        if len(parts) != 1:
            raise ValueError("a subscription's subjects must all belong to one part's stream")

    @property
    def stream(self) -> str:
        """The stream the subjects live in."""
        return stream_name(part_of(self.subjects[0]))


@dataclass(slots=True)
class _Delivery:
    msg: Msg
    event_id: str
    deliveries: int
    event: CloudEvent | None = None
    invalid: str | None = None


@dataclass
class ConsumerOptions:
    """Limits of a consumer, from the part's settings unless the subscription overrides them."""

    batch: int = 100
    ack_wait_s: float = 30.0
    max_deliveries: int = 5
    retry_delay_s: float = 1.0


class ConsumerRunner:
    """Pulls a subscription's events in batches and applies them, each once."""

    def __init__(
        self,
        *,
        part: str,
        subscription: Subscription,
        link: NatsLink,
        sessionmaker: async_sessionmaker[AsyncSession],
        options: ConsumerOptions,
    ) -> None:
        self.part = part
        self.subscription = subscription
        self.link = link
        self.sessionmaker = sessionmaker
        self.batch = options.batch
        self.ack_wait_s = subscription.ack_wait_s or options.ack_wait_s
        self.max_deliveries = subscription.max_deliveries or options.max_deliveries
        self.retry_delay_s = options.retry_delay_s
        # Events by outcome since start: applied, duplicate, retried, dead_lettered.
        self.counts: Counter[str] = Counter()
        self._lag = CONSUMER_LAG.labels(part, subscription.durable)
        self._last_errors: OrderedDict[str, str] = OrderedDict()
        self._subscription: JetStreamContext.PullSubscription | None = None
        # The acks of the last committed batch, confirmed while the next batch is applied.
        self._acking: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.subscription.durable

    def consumer_config(self) -> ConsumerConfig:
        """The durable consumer's configuration on the server."""
        subjects = list(self.subscription.subjects)
        return ConsumerConfig(
            name=self.name,
            durable_name=self.name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            # One delivery more than we allow: the last one only dead-letters the event, so an
            # event that crashes the process every time still reaches the dead-letter subject.
            max_deliver=self.max_deliveries + 1,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
            max_ack_pending=max(1000, self.batch * 4),
        )

    async def subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        """Create or update the durable consumer and bind a pull subscription to it."""
        stream = self.subscription.stream
        await js.add_consumer(stream, self.consumer_config())
        self._lag.set(0)
        return await js.pull_subscribe_bind(durable=self.name, stream=stream)

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and apply batches until ``stop``; the batch in hand is finished and acked."""
        try:
            await self._pull(stop)
        finally:
            await self._acks_confirmed()
            # A pull subscription's queue is never marked processed, so the connection's drain
            # would wait on it: leave it first.
            await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        try:
            await subscription.unsubscribe()
        except Exception as exc:  # the subscription or the connection is gone already
            log.info("consumer_unsubscribe_failed", consumer=self.name, error=repr(exc))

    async def _pull(self, stop: asyncio.Event) -> None:
        backoff = BACKOFF_MIN_S
        while not stop.is_set():
            if not self.link.ready.is_set():
                await wait_any([stop, self.link.ready], timeout=FETCH_TIMEOUT_S)
                continue
            try:
                if self._subscription is None:
                    self._subscription = await self.subscribe(self.link.js)
                msgs = await self._subscription.fetch(self.batch, timeout=FETCH_TIMEOUT_S)
            except TimeoutError:
                # Nothing arrived within the fetch's time: the consumer is idle, not broken.
                # nats-py raises its own TimeoutError or asyncio's, depending on where the wait
                # ended; both are TimeoutError. Keep the subscription: messages of a pull that
                # outlived the wait land in its queue and the next fetch takes them first
                # (leaving it would strand them until the ack wait redelivers them).
                self._lag.set(0)
                continue
            except Exception as exc:  # stream not there yet, NATS away: retry, slower each time
                log.warning(
                    "consumer_fetch_failed", consumer=self.name, error=repr(exc), retry_in_s=backoff
                )
                # Bind again: the consumer may be gone (a server that lost its store).
                await self._unsubscribe()
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            backoff = BACKOFF_MIN_S
            if msgs:
                self._lag.set(msgs[-1].metadata.num_pending)
                await self.process(msgs)

    async def process(self, msgs: Sequence[Msg]) -> None:
        """Apply a batch in one transaction; if any event fails, apply each in its own."""
        deliveries = [self._read(m) for m in msgs]
        if len(deliveries) > 1:
            try:
                outcomes = await self._apply(deliveries)
            except Exception:
                # One event failed and rolled the batch back: isolate it from the others.
                log.info("consumer_batch_failed", consumer=self.name, size=len(deliveries))
            else:
                await self._ack_soon(deliveries)
                self._count(outcomes)
                return
        for delivery in deliveries:
            await self._process_one(delivery)

    async def _process_one(self, delivery: _Delivery) -> None:
        try:
            outcomes = await self._apply([delivery])
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "event_handler_failed",
                consumer=self.name,
                event_id=delivery.event_id,
                subject=delivery.msg.subject,
                delivery=delivery.deliveries,
                error=reason,
            )
            if delivery.deliveries < self.max_deliveries:
                self._remember_error(delivery.event_id, reason)
                await self._retry(delivery)
                return
            try:
                outcomes = await self._apply([delivery], dead_letter_reason=reason)
            except Exception as dead_letter_error:  # the database is away: try again later
                log.warning("dead_letter_failed", consumer=self.name, error=repr(dead_letter_error))
                await self._retry(delivery)
                return
        await self._ack([delivery])
        self._count(outcomes)

    async def _apply(
        self, deliveries: Sequence[_Delivery], *, dead_letter_reason: str | None = None
    ) -> list[str]:
        """One transaction: record the events in the inbox and run the handler on the new ones."""
        outcomes: list[str] = []
        to_apply: list[_Delivery] = []
        now = datetime.now(UTC)
        async with self.sessionmaker() as session, session.begin():
            fresh = await repository.record_handled(
                session, consumer=self.name, event_ids=[d.event_id for d in deliveries], at=now
            )
            for delivery in deliveries:
                if delivery.event_id not in fresh:
                    outcomes.append("duplicate")
                    continue
                # A redelivery inside the same batch is a duplicate too.
                fresh.discard(delivery.event_id)
                reason = dead_letter_reason or self._give_up_reason(delivery)
                if reason is not None:
                    await self._dead_letter(session, delivery, reason=reason, at=now)
                    outcomes.append("dead_lettered")
                    continue
                assert delivery.event is not None
                if self.subscription.handler is not None:
                    await self._handle(session, delivery, delivery.event)
                else:
                    to_apply.append(delivery)
                outcomes.append("applied")
            if to_apply:
                await self._handle_batch(session, to_apply)
        return outcomes

    def _span_attributes(self, delivery: _Delivery) -> dict[str, str]:
        return {
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": delivery.msg.subject,
            "messaging.message.id": delivery.event_id,
            "messaging.consumer.group.name": self.name,
        }

    async def _handle(self, session: AsyncSession, delivery: _Delivery, event: CloudEvent) -> None:
        assert self.subscription.handler is not None
        # The span continues the trace of the change that published the event.
        with tracer.start_as_current_span(
            f"{delivery.msg.subject} process",
            context=trace_context(delivery.msg.headers),
            kind=SpanKind.CONSUMER,
            attributes=self._span_attributes(delivery),
        ):
            await self.subscription.handler(session, event)

    async def _handle_batch(self, session: AsyncSession, deliveries: Sequence[_Delivery]) -> None:
        assert self.subscription.batch_handler is not None
        first = deliveries[0]
        # One span for the batch, continuing the first event's trace and linked to the others'.
        links = [
            trace.Link(trace.get_current_span(trace_context(d.msg.headers)).get_span_context())
            for d in deliveries[1:]
        ]
        with tracer.start_as_current_span(
            f"{first.msg.subject} process",
            context=trace_context(first.msg.headers),
            kind=SpanKind.CONSUMER,
            links=[link for link in links if link.context.is_valid],
            attributes={
                **self._span_attributes(first),
                "messaging.batch.message_count": len(deliveries),
            },
        ):
            await self.subscription.batch_handler(
                session, [d.event for d in deliveries if d.event is not None]
            )

    def _give_up_reason(self, delivery: _Delivery) -> str | None:
        if delivery.invalid is not None:
            return f"not a valid CloudEvent: {delivery.invalid}"
        if delivery.deliveries > self.max_deliveries:
            last = self._last_errors.get(
                delivery.event_id, "the consumer stopped while handling it"
            )
            return f"failed {self.max_deliveries} deliveries; last: {last}"
        return None

    async def _dead_letter(
        self, session: AsyncSession, delivery: _Delivery, *, reason: str, at: datetime
    ) -> None:
        """Record the event and why, and publish it on the dead-letter subject (via the outbox)."""
        log.error(
            "event_dead_lettered",
            consumer=self.name,
            event_id=delivery.event_id,
            subject=delivery.msg.subject,
            reason=reason,
        )
        await repository.add_dead_letter(
            session,
            consumer=self.name,
            event_id=delivery.event_id,
            subject=delivery.msg.subject,
            deliveries=delivery.deliveries,
            reason=reason,
            payload=delivery.msg.data,
            at=at,
        )
        original: Any = (
            delivery.event.model_dump(mode="json")
            if delivery.event is not None
            else delivery.msg.data.decode(errors="replace")
        )
        letter = CloudEvent(
            id=uuid.uuid4().hex,
            source=f"/pingtai/{self.part}",
            type=dead_letter_type(part=self.part, consumer=self.name),
            time=at,
            subject=delivery.event_id,
            data={
                "consumer": self.name,
                "subject": delivery.msg.subject,
                "deliveries": delivery.deliveries,
                "reason": reason,
                "event": original,
            },
        )
        await outbox.add(session, letter)
        self._last_errors.pop(delivery.event_id, None)

    def _read(self, msg: Msg) -> _Delivery:
        deliveries = msg.metadata.num_delivered or 1
        header_id = (msg.headers or {}).get(MSG_ID_HEADER)
        try:
            event = CloudEvent.from_json(msg.data)
        except ValueError as exc:
            event_id = header_id or f"seq-{msg.metadata.sequence.stream}"
            return _Delivery(msg, event_id, deliveries, invalid=str(exc).splitlines()[0])
        return _Delivery(msg, event.id, deliveries, event=event)

    def _remember_error(self, event_id: str, reason: str) -> None:
        self._last_errors[event_id] = reason
        self._last_errors.move_to_end(event_id)
        while len(self._last_errors) > LAST_ERRORS_KEPT:
            self._last_errors.popitem(last=False)

    async def _retry(self, delivery: _Delivery) -> None:
        delay = min(self.retry_delay_s * 2 ** (delivery.deliveries - 1), MAX_RETRY_DELAY_S)
        try:
            await delivery.msg.nak(delay=delay)
        except Exception as exc:  # JetStream redelivers after ack_wait anyway
            log.info("nak_failed", consumer=self.name, error=repr(exc))
        self._count(["retried"])

    async def _ack_soon(self, deliveries: Sequence[_Delivery]) -> None:
        """Acknowledge a committed batch without waiting; one batch's acks in flight at most."""
        await self._acks_confirmed()
        self._acking = asyncio.create_task(self._ack(deliveries))

    async def _acks_confirmed(self) -> None:
        acking, self._acking = self._acking, None
        if acking is not None:
            await acking

    async def _ack(self, deliveries: Sequence[_Delivery]) -> None:
        """Acknowledge after commit; a lost ack means a redelivery the inbox ignores.

        Each ack is a plain publish (no reply awaited per message), then one flush (a PING
        answered once the server has read them all): a batch costs one round trip, not one per
        event. If the connection drops first, the unacknowledged events are redelivered after
        the ack wait and the inbox skips them.
        """
        try:
            for delivery in deliveries:
                await delivery.msg.ack()
            await self.link.client.flush(timeout=ACK_TIMEOUT_S)
        except Exception as exc:
            log.info("ack_failed", consumer=self.name, count=len(deliveries), error=repr(exc))

    def _count(self, outcomes: Sequence[str]) -> None:
        for outcome, count in Counter(outcomes).items():
            self.counts[outcome] += count
            EVENTS_HANDLED.labels(self.part, self.name, outcome).inc(count)

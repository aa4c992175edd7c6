"""Recompute: rebuild the indicators from the event streams JetStream retains.

For each stream the projection reads (identity, catalog, workflow, exchange, evaluation's own),
an ephemeral consumer reads every event from the start up to the last one present when the
replay began, and the same projection the live consumers use applies them in batches, recording
each event in the inbox under the live consumer's name. The projection does not depend on the
order of events, so the result equals what the live consumers computed.

Only what the projection derives is cleared first (facts, read copies, daily rows, histogram and
the indicator consumers' inbox); reviews, cases and the indicator system are the part's own data
and stay. Rebuilding in place is for a stopped evaluation part; ``recompute_into`` a fresh
database and ``compare`` verifies a running one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import nats
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import Database
from libs.common.events import CloudEvent, stream_name
from libs.common.events import repository as events_repository
from libs.common.events.envelope import part_of
from services.evaluation.facts.models import (
    ApplicationFact,
    BundleVersionCopy,
    CaseFact,
    ExchangeSeen,
    ItemVersionCopy,
    OrganisationCopy,
    ReviewFact,
)
from services.evaluation.index.models import StoredRanking
from services.evaluation.indicators import repository as indicators_repository
from services.evaluation.indicators.consumers import STREAMS
from services.evaluation.indicators.models import daily_indicators, processing_histogram
from services.evaluation.indicators.projection import Projection

DERIVED: tuple[Table, ...] = (
    daily_indicators,
    processing_histogram,
    *(
        cast(Table, model.__table__)
        for model in (
            ApplicationFact, ReviewFact, CaseFact, ItemVersionCopy, BundleVersionCopy,
            OrganisationCopy, ExchangeSeen, StoredRanking,
        )
    ),
)  # fmt: skip
FETCH_TIMEOUT_S = 2.0
# SQLite's page cache while replaying, in KiB (its default is 2 MiB).
REPLAY_CACHE_KIB = 256 * 1024
# Called after each applied batch with the consumer's name and the events it has applied.
Progress = Callable[[str, int], None]


@dataclass
class ReplayReport:
    """How many events each stream gave, and how long it took."""

    events: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.events.values())


async def clear_derived(session: AsyncSession) -> None:
    """Delete what the projection derives, and the indicator consumers' inbox."""
    await indicators_repository.clear(session, DERIVED, [d for d, _ in STREAMS])


async def _apply(
    database: Database, projection: Projection, durable: str, events: Sequence[CloudEvent]
) -> None:
    async with database.sessionmaker() as session, session.begin():
        # A million events touch inbox, fact and daily pages all over a file of hundreds of
        # megabytes: a larger SQLite page cache (this connection only) keeps them from being
        # read again batch after batch.
        await indicators_repository.widen_page_cache(session, REPLAY_CACHE_KIB)
        fresh = await events_repository.record_handled(
            session, consumer=durable, event_ids=[e.id for e in events], at=datetime.now(UTC)
        )
        # A stream holds each id once; "fresh" only guards a replay into a non-empty inbox.
        await projection(session, [e for e in events if e.id in fresh])


async def replay_stream(
    js: JetStreamContext,
    *,
    database: Database,
    projection: Projection,
    durable: str,
    subjects: Sequence[str],
    batch: int,
    progress: Progress | None = None,
) -> int:
    """Apply every event of one stream's ``subjects`` retained now; returns how many."""
    stream = stream_name(part_of(subjects[0]))
    try:
        await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        return 0  # the part never published: nothing to replay
    name = f"evaluation-replay-{uuid.uuid4().hex[:12]}"
    info = await js.add_consumer(
        stream,
        ConsumerConfig(
            name=name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            filter_subjects=list(subjects),
            inactive_threshold=60.0,
            mem_storage=True,
        ),
    )
    remaining = int(info.num_pending or 0)
    applied = 0
    subscription = await js.pull_subscribe_bind(durable=name, stream=stream)
    try:
        while remaining > 0:
            msgs = await subscription.fetch(min(batch, remaining), timeout=FETCH_TIMEOUT_S)
            events = [CloudEvent.from_json(m.data) for m in msgs]
            await _apply(database, projection, durable, events)
            applied += len(events)
            remaining -= len(events)
            if progress is not None:
                progress(durable, applied)
    finally:
        await subscription.unsubscribe()
        try:
            await js.delete_consumer(stream, name)
        except Exception:  # it goes by itself after the inactive threshold
            pass
    return applied


async def recompute(
    database: Database,
    *,
    nats_url: str,
    projection: Projection,
    batch: int = 1000,
    progress: Progress | None = None,
) -> ReplayReport:
    """Clear the derived tables of ``database`` and rebuild them from the retained streams."""
    started = time.monotonic()
    async with database.sessionmaker() as session, session.begin():
        await clear_derived(session)
    report = ReplayReport()
    client = await nats.connect(nats_url, name="pingtai-evaluation-recompute")
    try:
        js = client.jetstream()
        for durable, subjects in STREAMS:
            report.events[durable] = await replay_stream(
                js, database=database, projection=projection, durable=durable,
                subjects=subjects, batch=batch, progress=progress,
            )  # fmt: skip
    finally:
        await client.close()
    report.seconds = time.monotonic() - started
    return report


async def compare(live: Database, rebuilt: Database) -> tuple[bool, int, int, list[str]]:
    """(identical, live rows, rebuilt rows, the first differences) of two indicator tables."""
    async with live.sessionmaker() as session:
        left = await indicators_repository.all_rows(session)
    async with rebuilt.sessionmaker() as session:
        right = await indicators_repository.all_rows(session)
    differences: list[str] = []
    left_set: set[tuple[Any, ...]] = set(left)
    right_set: set[tuple[Any, ...]] = set(right)
    for row in sorted(left_set - right_set, key=repr)[:10]:
        differences.append(f"live only: {row}")
    for row in sorted(right_set - left_set, key=repr)[:10]:
        differences.append(f"rebuilt only: {row}")
    return left == right, len(left), len(right), differences

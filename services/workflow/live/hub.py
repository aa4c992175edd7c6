"""The live-progress hub: one reader of new history entries per process, fanning out to streams.

Each process runs one hub. It reads history entries newer than the newest it has seen, when a
session of this process commits events (``outbox.on_commit``: every step writes its history
entry and its event in one transaction) and every ``live_poll_s`` for what other replicas
wrote, and hands each entry to the streams whose filter it matches.

On PostgreSQL ids come from a sequence, so a transaction that took id 41 may commit after the
one that took 42: an id missing below the newest seen is looked for again on every read, for
``live_gap_grace_s``, and then taken for a rolled-back transaction's. An entry that turns up
late is still delivered (after the later ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from libs.common.database import Database
from libs.common.events import outbox
from services.workflow.applications.models import HistoryEntry
from services.workflow.live import repository as live_repository
from services.workflow.sla.loops import repeat

log = structlog.get_logger("pingtai.workflow.live")

# Entries a slow stream may have waiting before it is closed (the client then resumes with
# Last-Event-ID and catches up from the database).
QUEUE_SIZE = 1000
# Ids looked for again at most; beyond, the oldest are given up first.
MAX_MISSING = 10_000


@dataclass(eq=False)
class Subscriber:
    """One stream's filter and its queue; ``None`` in the queue ends the stream."""

    matches: Callable[[HistoryEntry], bool]
    queue: asyncio.Queue[HistoryEntry | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )


class HistoryHub:
    """Reads new history entries once per process and hands them to matching subscribers."""

    def __init__(
        self, database: Database, *, poll_s: float = 1.0, gap_grace_s: float = 10.0
    ) -> None:
        self.database = database
        self.poll_s = poll_s
        self.gap_grace_s = gap_grace_s
        self.batch = 500
        self.high = 0  # the newest id seen
        self.missing: dict[int, float] = {}  # ids below ``high`` not seen yet -> when noticed
        self.subscribers: set[Subscriber] = set()
        self.wakeup = asyncio.Event()
        self.closed = False
        self.started = False

    def subscribe(self, matches: Callable[[HistoryEntry], bool]) -> Subscriber:
        """A new subscriber, given every entry read from now on that ``matches``."""
        subscriber = Subscriber(matches)
        if self.closed:
            subscriber.queue.put_nowait(None)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop handing entries to ``subscriber``."""
        self.subscribers.discard(subscriber)

    async def start_at_newest(self) -> None:
        """Begin after the newest entry now committed (streams replay older ones themselves)."""
        async with self.database.sessionmaker() as session:
            self.high = await live_repository.newest_id(session)
        self.started = True

    async def read_new(self) -> int:
        """Read what is new (and late) once and hand it out; returns how many entries.

        With no stream open, only the ids are read (the newest seen and the gaps kept as with
        streams, nothing loaded): a process that streams nothing pays one light query per
        read, not the loading of every entry its requests wrote.
        """
        if not self.subscribers:
            async with self.database.sessionmaker() as session:
                ids = await live_repository.ids_after(session, after=self.high, limit=self.batch)
                late_ids = (
                    await live_repository.existing_ids(session, ids=list(self.missing))
                    if self.missing
                    else []
                )
            if not self.subscribers:
                self._advance(late_ids, ids)
                return len(late_ids) + len(ids)
            # A stream opened while the ids were read: read again, its entries in full.
        async with self.database.sessionmaker() as session:
            entries = await live_repository.entries_after(
                session, after=self.high, limit=self.batch
            )
            late = (
                await live_repository.entries_with_ids(session, ids=list(self.missing))
                if self.missing
                else []
            )
        self._advance([e.id for e in late], [e.id for e in entries])
        for entry in [*late, *entries]:
            self._hand_out(entry)
        return len(late) + len(entries)

    def _advance(self, late: list[int], new: list[int]) -> None:
        """Note what was read: late ids found, new ids (ascending) and the gaps below them."""
        now = time.monotonic()
        for number in late:
            self.missing.pop(number, None)
        expected = self.high + 1
        for number in new:
            for gap in range(expected, number):
                self.missing[gap] = now
            expected = number + 1
        if new:
            self.high = new[-1]
        self._give_up_old_gaps(now)

    def _give_up_old_gaps(self, now: float) -> None:
        expired = [i for i, noticed in self.missing.items() if now - noticed > self.gap_grace_s]
        for gap in expired:
            del self.missing[gap]
        if len(self.missing) > MAX_MISSING:
            for gap in sorted(self.missing)[: len(self.missing) - MAX_MISSING]:
                del self.missing[gap]

    def _hand_out(self, entry: HistoryEntry) -> None:
        for subscriber in list(self.subscribers):
            if not subscriber.matches(entry):
                continue
            try:
                subscriber.queue.put_nowait(entry)
            except asyncio.QueueFull:
                # Too slow: end its stream; the client resumes from the database.
                self.unsubscribe(subscriber)
                subscriber.queue = asyncio.Queue(1)
                subscriber.queue.put_nowait(None)
                log.info("live_stream_too_slow")

    async def run(self, stop: asyncio.Event) -> None:
        """Read on every local commit of events and every ``poll_s``, until ``stop``."""
        forget = outbox.on_commit(self.wakeup)
        try:
            await repeat(
                self._read_all, stop=stop, wakeup=self.wakeup, poll_s=self.poll_s,
                failure="live_read_failed",
            )  # fmt: skip
        finally:
            forget()

    async def _read_all(self) -> None:
        if not self.started:  # the database was away at start-up
            await self.start_at_newest()
        while await self.read_new() >= self.batch:
            pass

    def close(self) -> None:
        """End every stream (shutdown)."""
        self.closed = True
        for subscriber in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(None)
        self.subscribers.clear()

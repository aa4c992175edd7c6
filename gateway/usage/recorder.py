"""Usage counted in memory per request and written in batches, so the hot path never writes.

Each replica adds its own counts to the day's rows every ``flush_s`` seconds (an upsert adding
deltas, so replicas never overwrite each other) and sets the keys' last use. A replica that dies
loses at most its last ``flush_s`` seconds of *statistics*; limits and quotas are not counted here
but in the shared counters (gateway.edge.limits).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.applications import repository as applications_repository
from gateway.usage import repository as usage_repository

log = structlog.get_logger("pingtai.gateway.usage")


class UsageRecorder:
    """Counts calls, errors and rejections per key and day; flushes them in the background."""

    def __init__(
        self,
        *,
        sessionmaker: Callable[[], async_sessionmaker[AsyncSession]],
        flush_s: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessionmaker = sessionmaker
        self.flush_s = flush_s
        self._clock = clock
        self._counts: defaultdict[tuple[str, str, date], list[int]] = defaultdict(lambda: [0, 0, 0])
        self._last_used: dict[str, datetime] = {}
        self._lock = asyncio.Lock()

    def record(self, key_id: str, application_id: str, status: int) -> None:
        """One answered request made with a key (cheap: two dictionary updates)."""
        now = self._clock()
        counts = self._counts[(key_id, application_id, now.date())]
        counts[0] += 1
        if status >= 400:
            counts[1] += 1
        if status == 429:
            counts[2] += 1
        self._last_used[key_id] = now

    async def flush(self) -> None:
        """Write what was counted since the last flush; kept for the next one if that fails."""
        async with self._lock:
            counts, self._counts = self._counts, defaultdict(lambda: [0, 0, 0])
            last_used, self._last_used = self._last_used, {}
            if not counts and not last_used:
                return
            try:
                async with self._sessionmaker()() as session, session.begin():
                    await usage_repository.add_counts(
                        session, {k: (v[0], v[1], v[2]) for k, v in counts.items()}
                    )
                    await applications_repository.touch_keys(session, last_used)
            except Exception as exc:
                log.warning("usage_flush_failed", error=str(exc), rows=len(counts))
                for k, v in counts.items():
                    mine = self._counts[k]
                    for i in range(3):
                        mine[i] += v[i]
                for key_id, when in last_used.items():
                    if self._last_used.get(key_id, when) <= when:
                        self._last_used[key_id] = when

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.flush_s)
            except TimeoutError:
                pass
            await self.flush()

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Flush every ``flush_s`` while the app serves, and once more at shutdown."""
        stop = asyncio.Event()
        task = asyncio.create_task(self._run(stop), name="gateway-usage-flush")
        try:
            yield
        finally:
            stop.set()
            await task

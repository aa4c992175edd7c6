"""Rate limits and quotas that hold across replicas, with leases so most requests stay local.

A limit is ``quantity`` requests per fixed window of ``window_s`` seconds (aligned to the epoch:
minutes start at :00, days at 00:00 UTC). Its count lives in a shared counter (``CounterStore``).
Instead of one round trip per request, a replica *leases* a slice of the window's budget - it adds
the slice to the shared counter, and the total that comes back says how much of the slice is
really left - then spends the slice locally. The next lease is taken in the background before the
slice runs out, so a busy key rarely waits. Slices shrink as the budget runs low (an eighth of
what is left, at most ``max_lease``), down to one request, so that near the limit the count is
exact.

Accuracy: the shared total never exceeds the quantity, so all replicas together never admit more
than the limit in a window. They may admit slightly fewer: tokens leased by one replica and not
spent by the end of the window are lost to the others (at most the last slices, a few requests per
replica). Longer windows (a day) lease slices up to ten times larger. Fixed windows let a client
spend a whole budget at the end of one window and another at the start of the next. While the
shared counters are unreachable each replica counts alone in memory (the limit holds per replica),
and says so in its log.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from gateway.edge.counters import CounterStore, CountersUnavailable, MemoryCounters

log = structlog.get_logger("pingtai.gateway.limits")

MAX_TRACKED = 100_000


@dataclass(frozen=True, slots=True)
class Limit:
    """``quantity`` requests per ``window_s``; ``policy`` names it in RateLimit headers."""

    policy: str
    quantity: int
    window_s: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request under one limit."""

    allowed: bool
    limit: Limit
    remaining: int
    reset_s: int  # seconds until the window ends


@dataclass(slots=True)
class _Lease:
    index: int
    tokens: int = 0
    # The shared total after our last lease: the budget the whole cluster has taken so far.
    shared: int = 0
    exhausted: bool = False
    pending: asyncio.Task[None] | None = field(default=None, repr=False)


def counter_name(kind: str, identity: str) -> str:
    """A subject-safe counter name for ``identity`` (an IP, a token subject, a key id)."""
    digest = hashlib.blake2b(identity.encode(), digest_size=10).hexdigest()
    return f"{kind}.{digest}"


class Limiter:
    """Decides per request; counts in ``store`` with leases, in memory while it is down."""

    def __init__(
        self,
        store: CounterStore,
        *,
        max_lease: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_lease = max_lease
        self._clock = clock
        self._local = MemoryCounters(clock)
        self._leases: OrderedDict[tuple[str, int], _Lease] = OrderedDict()
        self.degraded = False

    async def hit(self, name: str, limit: Limit) -> Decision:
        """Count one request of ``name`` under ``limit``: allowed or not, remaining, reset."""
        now = self._clock()
        index = int(now // limit.window_s)
        reset_s = max(1, math.ceil((index + 1) * limit.window_s - now))
        lease = self._lease_for(name, limit, index)
        while lease.tokens <= 0:
            if lease.exhausted:
                return Decision(False, limit, 0, reset_s)
            if lease.pending is None:
                lease.pending = asyncio.ensure_future(self._take(name, limit, lease))
            await asyncio.shield(lease.pending)
        lease.tokens -= 1
        if (
            lease.pending is None
            and not lease.exhausted
            and lease.tokens <= self._slice(limit, lease) // 4
            and lease.shared < limit.quantity
        ):
            # Take the next slice before this one runs out: the hot path rarely waits.
            lease.pending = asyncio.ensure_future(self._take(name, limit, lease))
        remaining = max(0, limit.quantity - lease.shared + lease.tokens)
        return Decision(True, limit, remaining, reset_s)

    async def used(self, name: str, limit: Limit) -> int:
        """How much of the current window's budget is taken (leased included), all replicas."""
        index = int(self._clock() // limit.window_s)
        counter = f"{name}.{index}"
        try:
            return min(limit.quantity, await self.store.read(limit.window_s, counter))
        except CountersUnavailable:
            return min(limit.quantity, await self._local.read(limit.window_s, counter))

    def _lease_for(self, name: str, limit: Limit, index: int) -> _Lease:
        key = (name, limit.window_s)
        lease = self._leases.get(key)
        if lease is None or lease.index != index:
            lease = _Lease(index)
            self._leases[key] = lease
            if len(self._leases) > MAX_TRACKED:
                self._leases.popitem(last=False)
        else:
            self._leases.move_to_end(key)
        return lease

    def _slice(self, limit: Limit, lease: _Lease) -> int:
        left = limit.quantity - lease.shared
        # Longer windows take bigger slices (a day's quota: ten times a minute's); near the
        # end of the budget every window's slices shrink to one.
        cap = self.max_lease * (10 if limit.window_s > 60 else 1)
        return max(1, min(cap, left // 8))

    async def _take(self, name: str, limit: Limit, lease: _Lease) -> None:
        try:
            size = self._slice(limit, lease)
            counter = f"{name}.{lease.index}"
            try:
                total = await self.store.add(limit.window_s, counter, size)
                if self.degraded:
                    self.degraded = False
                    log.info("limits_shared_again")
            except CountersUnavailable as exc:
                if not self.degraded:
                    self.degraded = True
                    log.warning("limits_counting_locally", error=str(exc))
                total = await self._local.add(limit.window_s, counter, size)
            before = total - size
            granted = max(0, min(size, limit.quantity - before))
            lease.shared = max(lease.shared, min(total, limit.quantity))
            lease.tokens += granted
            if granted < size:
                lease.exhausted = True
        finally:
            lease.pending = None

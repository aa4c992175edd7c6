"""Counters every gateway replica shares: a NATS JetStream counter stream per window length.

nats-server 2.12+ keeps counters itself (ADR-49): a stream with ``allow_msg_counter`` adds the
``Nats-Incr`` header of each publish to the subject's total and returns the new total in the
acknowledgement, exactly, however many replicas publish at once. Reading is a direct get of the
subject's last message. One subject per counter and window (``<window>.<name>.<index>``); the
stream keeps only the last message per subject and drops windows older than twice their length.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Protocol

import structlog
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from libs.common.events.connection import NatsLink

log = structlog.get_logger("pingtai.gateway.limits")

SUBJECT_ROOT = "pingtai-gateway-limits"


class CountersUnavailable(Exception):
    """The shared counters cannot be reached now."""


class CounterStore(Protocol):
    """Where counters live: ``add`` returns the total after adding ``amount``."""

    async def add(self, window_s: int, name: str, amount: int) -> int: ...

    async def read(self, window_s: int, name: str) -> int: ...


class MemoryCounters:
    """Counters of one process: without NATS, or while it is down (each replica counts alone)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._totals: dict[tuple[int, str], tuple[float, int]] = {}
        self._clock = clock
        self._purge_at = 4096

    async def add(self, window_s: int, name: str, amount: int) -> int:
        now = self._clock()
        _, total = self._totals.get((window_s, name), (now, 0))
        total += amount
        self._totals[(window_s, name)] = (now, total)
        if len(self._totals) >= self._purge_at:
            self._totals = {k: v for k, v in self._totals.items() if v[0] + 2 * k[0] > now}
            self._purge_at = max(4096, 2 * len(self._totals))
        return total

    async def read(self, window_s: int, name: str) -> int:
        return self._totals.get((window_s, name), (0.0, 0))[1]


def stream_for(window_s: int) -> str:
    """The counter stream of one window length."""
    return f"PINGTAI_GATEWAY_LIMITS_{window_s}"


class NatsCounters:
    """Counters in JetStream counter streams, on the part's NATS connection."""

    def __init__(
        self,
        link: Callable[[], NatsLink | None],
        *,
        windows: tuple[int, ...],
        replicas: int = 1,
        timeout_s: float = 0.5,
    ) -> None:
        self._link = link
        self.windows = windows
        self.replicas = replicas
        self.timeout_s = timeout_s
        self._declared_generation = -1
        self._declaring: asyncio.Lock = asyncio.Lock()

    def _ready_link(self) -> NatsLink:
        link = self._link()
        if link is None or not link.ready.is_set() or not link.is_connected:
            raise CountersUnavailable("NATS is not connected")
        return link

    async def _declared(self) -> NatsLink:
        link = self._ready_link()
        if self._declared_generation == link.generation:
            return link
        async with self._declaring:
            if self._declared_generation != link.generation:
                for window_s in self.windows:
                    await self._declare(link, window_s)
                self._declared_generation = link.generation
        return link

    async def _declare(self, link: NatsLink, window_s: int) -> None:
        config = StreamConfig(
            name=stream_for(window_s),
            subjects=[f"{SUBJECT_ROOT}.{window_s}.>"],
            allow_msg_counter=True,
            allow_direct=True,
            max_msgs_per_subject=1,
            max_age=2 * window_s + 60,
            num_replicas=self.replicas,
            storage=StorageType.FILE,
        )
        try:
            await link.js.add_stream(config)
        except Exception:
            # It exists already (another replica made it, or a previous run): align it.
            await link.js.update_stream(config)
        log.info("limits_stream_declared", stream=config.name)

    async def add(self, window_s: int, name: str, amount: int) -> int:
        try:
            link = await self._declared()
            ack = await link.js.publish(
                f"{SUBJECT_ROOT}.{window_s}.{name}",
                b"",
                timeout=self.timeout_s,
                headers={"Nats-Incr": str(amount)},
            )
        except CountersUnavailable:
            raise
        except Exception as exc:
            raise CountersUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if ack.val is None:
            raise CountersUnavailable(f"{stream_for(window_s)} is not a counter stream")
        return int(ack.val)

    async def read(self, window_s: int, name: str) -> int:
        try:
            link = await self._declared()
            message = await asyncio.wait_for(
                link.js.get_last_msg(
                    stream_for(window_s), f"{SUBJECT_ROOT}.{window_s}.{name}", direct=True
                ),
                self.timeout_s,
            )
        except NotFoundError:
            return 0
        except CountersUnavailable:
            raise
        except Exception as exc:
            raise CountersUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return int(json.loads(message.data or b'{"val":"0"}')["val"])

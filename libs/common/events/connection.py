"""One NATS connection per part, connected in the background so start-up never waits for NATS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext

log = structlog.get_logger("pingtai.events")

BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
RECONNECT_WAIT_S = 1.0
DRAIN_TIMEOUT_S = 5


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def wait_any(events: list[asyncio.Event], *, timeout: float) -> None:
    """Return as soon as any of ``events`` is set, or after ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class NatsLink:
    """The part's connection: connects until it succeeds, then nats-py reconnects forever."""

    def __init__(
        self, *, url: str, name: str, on_connect: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.url = url
        self.name = name
        self._on_connect = on_connect
        self._client: NatsClient | None = None
        self._js: JetStreamContext | None = None
        # Set while connected and the part's stream is declared.
        self.ready = asyncio.Event()
        # How many times the link became ready: a change means a new connection (a reconnect),
        # after which state the server may have lost, such as ephemeral consumers, is redone.
        self.generation = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        # Set when the part stops: ends every retry loop of the link.
        self._closing = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        """Whether NATS answers right now."""
        return self._client is not None and self._client.is_connected

    @property
    def client(self) -> NatsClient:
        """The NATS client (only once connected)."""
        if self._client is None:
            raise RuntimeError("NATS is not connected yet")
        return self._client

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context (only once connected)."""
        if self._js is None:
            raise RuntimeError("NATS is not connected yet")
        return self._js

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, retrying with backoff until connected or ``stop`` is set."""
        backoff = BACKOFF_MIN_S
        stopping = asyncio.create_task(stop.wait())
        stopping.add_done_callback(lambda _: self._closing.set())
        self._tasks.add(stopping)
        while not stop.is_set():
            try:
                self._client = await nats.connect(
                    self.url,
                    name=self.name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RECONNECT_WAIT_S,
                    connect_timeout=2,
                    drain_timeout=DRAIN_TIMEOUT_S,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                )
            except Exception as exc:  # NATS down: keep the part serving, try again later
                log.info("nats_unavailable", url=self.url, error=str(exc), retry_in_s=backoff)
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            self._js = self._client.jetstream()
            log.info("nats_connected", url=self.url)
            await self.declare()
            return

    async def declare(self) -> None:
        """Run ``on_connect`` (declare the stream) until it succeeds, then mark the link ready."""
        backoff = BACKOFF_MIN_S
        while self._on_connect is not None and not self._closing.is_set():
            try:
                await self._on_connect()
                break
            except Exception as exc:  # JetStream may still be starting after a restart: retry
                log.warning("nats_declare_failed", error=str(exc), retry_in_s=backoff)
                await sleep_unless(self._closing, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        if self.is_connected and not self._closing.is_set():
            self.generation += 1
            self.ready.set()

    async def close(self) -> None:
        """Deliver what is buffered, then close."""
        self._closing.set()
        for task in self._tasks:
            task.cancel()
        client, self._client = self._client, None
        self.ready.clear()
        if client is None or client.is_closed:
            return
        try:
            await client.drain()
        except Exception as exc:  # closing anyway
            log.info("nats_drain_failed", error=str(exc))
            await client.close()

    async def _disconnected(self) -> None:
        self.ready.clear()
        log.warning("nats_disconnected", url=self.url)

    async def _reconnected(self) -> None:
        log.info("nats_reconnected", url=self.url)
        # A server that lost its store has lost the stream too: declare it again, outside
        # nats-py's reconnect task, which must not wait on our requests.
        task = asyncio.create_task(self.declare())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _error(self, exc: Exception) -> None:
        log.info("nats_error", error=str(exc))

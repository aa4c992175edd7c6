"""The background loops of the SLA timer, the live hub and the webhook deliverer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog

log = structlog.get_logger("pingtai.workflow")


async def repeat(
    step: Callable[[], Awaitable[object]],
    *,
    stop: asyncio.Event,
    wakeup: asyncio.Event,
    poll_s: float,
    failure: str,
) -> None:
    """Run ``step`` now, then when ``wakeup`` is set or ``poll_s`` passed, until ``stop``.

    A step that raises is logged as ``failure`` and tried again at the next turn.
    """
    while not stop.is_set():
        try:
            await step()
        except Exception:
            log.exception(failure)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), timeout=poll_s)
        wakeup.clear()


@asynccontextmanager
async def running(
    name: str,
    loop: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    *,
    wakeup: asyncio.Event,
) -> AsyncIterator[None]:
    """Run ``loop(stop)`` as a task while the context is open; at exit stop it and wait."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop(stop), name=name)
    try:
        yield
    finally:
        stop.set()
        wakeup.set()
        await task

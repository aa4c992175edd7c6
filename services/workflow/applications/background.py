"""The applications' lifespan: the runtime (exchange client, limits) and the fetch retrier."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from services.workflow.applications import service as applications_service
from services.workflow.applications.runtime import Runtime, runtime_lifespan

log = structlog.get_logger("pingtai.workflow.fetch_retrier")


async def _retry_forever(app: FastAPI, stop: asyncio.Event) -> None:
    runtime: Runtime = app.state.runtime
    while not stop.is_set():
        try:
            moved = await applications_service.retry_fetches(
                app.state.database.sessionmaker, runtime
            )
            if moved:
                log.info("materials_fetched_on_retry", applications=moved)
        except Exception as exc:  # the database away: try again next round
            log.warning("fetch_retrier_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=runtime.fetch_retry_interval_s)


@asynccontextmanager
async def applications_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the runtime and retry, in the background, fetches exchange could not answer."""
    async with runtime_lifespan(app):
        stop = asyncio.Event()
        retrier = asyncio.create_task(_retry_forever(app, stop), name="workflow-fetch-retrier")
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await retrier

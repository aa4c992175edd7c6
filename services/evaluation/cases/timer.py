"""The overdue timer: each replica ticks; each case's deadline raises one event in all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import structlog
from fastapi import FastAPI

from libs.common.database import Database
from services.evaluation.cases import service as cases_service
from services.evaluation.clock import utcnow
from services.evaluation.settings import EvaluationSettings

log = structlog.get_logger("pingtai.evaluation.cases")


async def tick(database: Database, *, now: datetime | None = None) -> int:
    """One round: raise what is overdue now; returns how many events this replica raised."""
    async with database.sessionmaker() as session, session.begin():
        return await cases_service.raise_overdue(session=session, now=now or utcnow())


def overdue_timer(
    settings: EvaluationSettings, *, now: Callable[[], datetime] = utcnow
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """An app lifespan running the timer every ``case_overdue_poll_s`` seconds."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database: Database = app.state.database

        async def run() -> None:
            while True:
                try:
                    raised = await tick(database, now=now())
                    if raised:
                        log.info("cases_overdue_raised", count=raised)
                except Exception as exc:  # the next round tries again
                    log.warning("case_overdue_tick_failed", error=repr(exc))
                await asyncio.sleep(settings.case_overdue_poll_s)

        task = asyncio.create_task(run(), name="evaluation-case-overdue")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan

"""The SLA timer: raises each clock's reminder and overdue event once, across replicas.

Nothing lives in memory: the clocks are rows. Every tick, each replica looks for running clocks
whose deadline (or reminder time) has passed and whose event was not raised, and claims each
with a conditional UPDATE (``... SET overdue_raised_at = :now WHERE id = :id AND
overdue_raised_at IS NULL AND stopped_at IS NULL``) in the transaction that also writes the
event to the outbox. Only the UPDATE that changed the row writes the event, and it commits
with it or not at all, so a clock's event is raised exactly once, whichever replica ticks first
and whenever a process stops (a restart between the deadline and the tick raises it at the
next tick). On PostgreSQL the candidate rows are read ``FOR UPDATE SKIP LOCKED`` so replicas
do not queue behind each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import Database
from libs.common.events import new_event, outbox
from services.workflow.ids import as_utc, utcnow
from services.workflow.sla import repository as sla_repository
from services.workflow.sla.calendar import CALENDAR, YearCalendar
from services.workflow.sla.events import SlaClockEvent, SlaOverdue, SlaReminder
from services.workflow.sla.loops import repeat, running
from services.workflow.sla.models import SlaClock
from services.workflow.sla.service import ReminderPolicy
from services.workflow.sla.settings import SlaLiveWebhookSettings

log = structlog.get_logger("pingtai.workflow.sla")

SLA_EVENTS = ("overdue", "reminder")


async def refresh_calendar(session: AsyncSession) -> None:
    """Make this process's calendar the packaged years overridden by the database's."""
    years = await sla_repository.calendar_years(session)
    CALENDAR.replace(YearCalendar.from_definition(y.definition) for y in years)


def _event_for(what: str, clock: SlaClock) -> SlaClockEvent:
    common = {
        "clock_id": clock.id,
        "kind": clock.kind,
        "ref_id": clock.ref_id,
        "application_id": clock.application_id,
        "department_org_id": clock.department_org_id,
        "round": clock.round,
        "started_at": as_utc(clock.started_at),
        "due_at": as_utc(clock.due_at),
    }
    if what == "overdue":
        return SlaOverdue.model_validate(common)
    assert clock.remind_at is not None
    return SlaReminder.model_validate({**common, "remind_at": as_utc(clock.remind_at)})


class SlaTimer:
    """One replica's timer; any number may run against the same database."""

    def __init__(
        self,
        database: Database,
        *,
        batch: int = 100,
        poll_s: float = 5.0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.batch = batch
        self.poll_s = poll_s
        self.now = now
        self.wakeup = asyncio.Event()

    async def tick(self) -> int:
        """Raise every due overdue, then every due reminder; how many this replica raised."""
        raised = 0
        async with self.database.sessionmaker() as session:
            await refresh_calendar(session)
        for what in SLA_EVENTS:
            while True:
                claimed, seen = await self._raise_batch(what)
                raised += claimed
                if seen < self.batch:
                    break
        return raised

    async def _raise_batch(self, what: str) -> tuple[int, int]:
        now = self.now()
        async with self.database.sessionmaker() as session:
            skip_locked = session.bind.dialect.name == "postgresql"
            ids = await sla_repository.due_ids(
                session, what=what, now=now, limit=self.batch, skip_locked=skip_locked
            )
            claimed = 0
            for clock_id in ids:
                if not await sla_repository.claim(session, what=what, clock_id=clock_id, now=now):
                    continue  # another replica raised it, or the clock stopped meanwhile
                clock = await sla_repository.get_by_id(session, clock_id=clock_id)
                await outbox.add(
                    session, new_event(_event_for(what, clock), subject=clock.application_id)
                )
                claimed += 1
            await session.commit()
        if claimed:
            log.info("sla_events_raised", what=what, count=claimed)
        return claimed, len(ids)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``poll_s`` until ``stop`` is set; a failed tick is logged and retried."""
        await repeat(
            self.tick, stop=stop, wakeup=self.wakeup, poll_s=self.poll_s, failure="sla_tick_failed"
        )


@asynccontextmanager
async def sla_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run this replica's SLA timer while the app runs (``sla_timer_enabled``)."""
    settings: SlaLiveWebhookSettings = app.state.settings
    ReminderPolicy.working_days = settings.sla_reminder_working_days
    database: Database = app.state.database
    try:
        async with database.sessionmaker() as session:
            await refresh_calendar(session)
    except Exception:  # the database may be away: the timer's first tick tries again
        log.warning("sla_calendar_not_loaded", exc_info=True)
    if not settings.sla_timer_enabled:
        yield
        return
    timer = SlaTimer(database, batch=settings.sla_timer_batch, poll_s=settings.sla_timer_poll_s)
    app.state.sla_timer = timer
    async with running("workflow-sla-timer", timer.run, wakeup=timer.wakeup):
        yield

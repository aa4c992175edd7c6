"""SLA clocks: started and stopped with tasks and applications, in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.ids import utcnow
from services.workflow.sla import repository as sla_repository
from services.workflow.sla.calendar import CALENDAR
from services.workflow.sla.models import SlaClock

CLOCK_KINDS = ("task", "application")


class ReminderPolicy:
    """How many working days before a deadline its reminder is due (the process's setting)."""

    working_days: int = 1


def reminder_time(*, due_at: datetime, now: datetime) -> datetime | None:
    """When the reminder of a clock due at ``due_at`` is due; None if none or already past."""
    if ReminderPolicy.working_days <= 0:
        return None
    remind_at = CALENDAR.working_days_before(due_at, ReminderPolicy.working_days)
    return remind_at if remind_at > now else None


async def start_clock(
    session: AsyncSession,
    *,
    kind: str,
    ref_id: str,
    application_id: str,
    department_org_id: str | None,
    due_at: datetime,
) -> None:
    """Start (or start again, as a new round) the clock of a task or application."""
    if kind not in CLOCK_KINDS:
        raise ValueError(f"kind must be one of {CLOCK_KINDS}, not {kind!r}")
    if due_at.tzinfo is None:
        raise ValueError("due_at must be timezone-aware")
    now = utcnow()
    due_at = due_at.astimezone(UTC)
    remind_at = reminder_time(due_at=due_at, now=now)
    clock = await sla_repository.get_clock(session, kind=kind, ref_id=ref_id)
    if clock is None:
        session.add(
            SlaClock(
                kind=kind,
                ref_id=ref_id,
                application_id=application_id,
                department_org_id=department_org_id,
                started_at=now,
                due_at=due_at,
                remind_at=remind_at,
                round=1,
            )
        )
        await session.flush()
        return
    clock.application_id = application_id
    clock.department_org_id = department_org_id
    clock.started_at = now
    clock.due_at = due_at
    clock.remind_at = remind_at
    clock.stopped_at = None
    clock.reminder_raised_at = None
    clock.overdue_raised_at = None
    clock.round += 1
    await session.flush()


async def stop_clock(session: AsyncSession, *, kind: str, ref_id: str) -> None:
    """Stop the clock of a task or application; nothing happens if it is not running."""
    if kind not in CLOCK_KINDS:
        raise ValueError(f"kind must be one of {CLOCK_KINDS}, not {kind!r}")
    await sla_repository.stop(session, kind=kind, ref_id=ref_id, now=utcnow())

"""SLA clocks: started and stopped with tasks and applications, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from libs.common.auth import Principal, Role
from libs.common.errors import Forbidden, InvalidInput, NotFound
from services.workflow import bulk
from services.workflow.ids import new_id, utcnow
from services.workflow.sla import repository as sla_repository
from services.workflow.sla.calendar import CALENDAR, YearCalendar
from services.workflow.sla.models import CalendarYear as CalendarYearRow
from services.workflow.sla.schemas import CalendarYear as CalendarYearView
from services.workflow.sla.schemas import CalendarYearUpdate

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


@dataclass(frozen=True, slots=True)
class ClockStart:
    """A clock to start: a task's or an application's deadline."""

    kind: str
    ref_id: str
    application_id: str
    department_org_id: str | None
    due_at: datetime


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
    await start_clocks(
        session,
        [ClockStart(kind, ref_id, application_id, department_org_id, due_at)],
    )


async def start_clocks(session: AsyncSession, clocks: Sequence[ClockStart]) -> None:
    """Start several clocks in one statement; a clock already there starts a new round."""
    if clocks:
        await bulk.run(session, lambda connection: write_clocks(connection, started=clocks))


async def stop_clock(session: AsyncSession, *, kind: str, ref_id: str) -> None:
    """Stop the clock of a task or application; nothing happens if it is not running."""
    await stop_clocks(session, [(kind, ref_id)])


async def stop_clocks(session: AsyncSession, clocks: Sequence[tuple[str, str]]) -> None:
    """Stop several clocks, given as (kind, ref_id), in one statement (those not running: none)."""
    if clocks:
        await bulk.run(session, lambda connection: write_clocks(connection, stopped=clocks))


def write_clocks(
    connection: Connection,
    *,
    started: Sequence[ClockStart] = (),
    stopped: Sequence[tuple[str, str]] = (),
) -> None:
    """Stop clocks, then start others, on a transaction's connection (inside ``bulk.run``).

    No read first: the stops are one prebuilt UPDATE, the starts one INSERT ... ON CONFLICT
    (kind, ref_id) DO UPDATE (a clock already there starts a new round).
    """
    now = utcnow()
    for kind, _ in stopped:
        if kind not in CLOCK_KINDS:
            raise ValueError(f"kind must be one of {CLOCK_KINDS}, not {kind!r}")
    if stopped:
        sla_repository.stop_many(connection, clocks=stopped, now=now)
    if not started:
        return
    rows = []
    for clock in started:
        if clock.kind not in CLOCK_KINDS:
            raise ValueError(f"kind must be one of {CLOCK_KINDS}, not {clock.kind!r}")
        if clock.due_at.tzinfo is None:
            raise ValueError("due_at must be timezone-aware")
        due_at = clock.due_at.astimezone(UTC)
        rows.append({
            "id": new_id(), "kind": clock.kind, "ref_id": clock.ref_id,
            "application_id": clock.application_id,
            "department_org_id": clock.department_org_id, "started_at": now,
            "due_at": due_at, "remind_at": reminder_time(due_at=due_at, now=now),
        })  # fmt: skip
    sla_repository.upsert_running(connection, rows=rows)


def _check_year(year: int, update: CalendarYearUpdate) -> None:
    near = (year - 1, year, year + 1)
    for index, period in enumerate(update.holidays):
        if year not in (period.start.year, period.end.year) or period.start.year not in near:
            raise InvalidInput.for_field(
                f"holidays.{index}", f"the holiday {period.name!r} does not fall in {year}"
            )
    for index, day in enumerate(update.working_weekends):
        if day.year not in near:
            raise InvalidInput.for_field(f"working_weekends.{index}", f"{day} is far from {year}")


def calendar_view(year: YearCalendar, *, origin: str) -> CalendarYearView:
    """The API view of a year's calendar."""
    return CalendarYearView.model_validate({**year.to_definition(), "origin": origin})


async def read_calendar_year(session: AsyncSession, *, year: int) -> CalendarYearView:
    """A year's calendar: the admin's if set, else the packaged one."""
    stored = await sla_repository.get_calendar_year(session, year=year)
    if stored is not None:
        return calendar_view(YearCalendar.from_definition(stored.definition), origin="admin")
    packaged = CALENDAR.packaged_year(year)
    if packaged is None:
        raise NotFound(
            f"No holiday calendar for {year}: working days are Monday to Friday until a "
            "platform admin sets it."
        )
    return calendar_view(packaged, origin="packaged")


async def replace_calendar_year(
    session: AsyncSession, *, principal: Principal, year: int, update: CalendarYearUpdate
) -> CalendarYearView:
    """Set a year's calendar (platform admins); this process uses it once the change commits."""
    if not principal.has_role(Role.PLATFORM_ADMIN):
        raise Forbidden("Only a platform admin sets the holiday calendar.")
    _check_year(year, update)
    calendar = YearCalendar.from_definition({**update.model_dump(mode="json"), "year": year})
    definition = calendar.to_definition()
    stored = await sla_repository.get_calendar_year(session, year=year)
    if stored is None:
        stored = CalendarYearRow(year=year, definition=definition)
        session.add(stored)
    stored.definition = definition
    stored.updated_at = utcnow()
    stored.updated_by = principal.sub
    await session.flush()

    def use_it(_session: Session) -> None:
        CALENDAR.replace([*_overrides_except(year), calendar])

    # Other replicas pick it up at their timer's next tick (refresh_calendar).
    sa_event.listen(session.sync_session, "after_commit", use_it, once=True)
    return calendar_view(calendar, origin="admin")


def _overrides_except(year: int) -> list[YearCalendar]:
    return [
        y
        for number, y in CALENDAR.years().items()
        if number != year and y is not CALENDAR.packaged_year(number)
    ]

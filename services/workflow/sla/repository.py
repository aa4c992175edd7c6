"""Every query of SLA clocks and calendar years."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import DirectWrite, dialect_insert
from services.workflow.sla.models import CalendarYear, SlaClock


async def get_clock(session: AsyncSession, *, kind: str, ref_id: str) -> SlaClock | None:
    """The clock of one task or application."""
    result = await session.execute(
        select(SlaClock).where(SlaClock.kind == kind, SlaClock.ref_id == ref_id)
    )
    return result.scalar_one_or_none()


async def list_for_application(session: AsyncSession, *, application_id: str) -> list[SlaClock]:
    """The clocks of an application and its tasks, the application's first."""
    result = await session.execute(
        select(SlaClock)
        .where(SlaClock.application_id == application_id)
        .order_by(SlaClock.kind, SlaClock.started_at, SlaClock.id)
    )
    return list(result.scalars())


def upsert_running(connection: Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert running clocks; one already there for (kind, ref_id) is reset as a new round."""
    statement = _upsert_running_for(connection.dialect.name)
    statement.execute_many(connection, [{**row, "round": 1} for row in rows])


def _upsert_running(insert: Any) -> Any:
    statement = insert(_CLOCKS)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_CLOCKS.c.kind, _CLOCKS.c.ref_id],
        set_={
            "application_id": excluded.application_id,
            "department_org_id": excluded.department_org_id,
            "started_at": excluded.started_at,
            "due_at": excluded.due_at,
            "remind_at": excluded.remind_at,
            "stopped_at": None,
            "reminder_raised_at": None,
            "overdue_raised_at": None,
            "round": _CLOCKS.c.round + 1,
        },
    )


_CLOCKS = cast(Table, SlaClock.__table__)
# What each running clock's row gives (``sla.service.start_clocks``), ``round`` added here.
_RUNNING_KEYS = ("id", "kind", "ref_id", "application_id", "department_org_id", "started_at",
                 "due_at", "remind_at", "round")  # fmt: skip


@cache
def _upsert_running_for(dialect_name: str) -> DirectWrite:
    """Built once per dialect (its own ``INSERT ... ON CONFLICT``), when first used."""
    return DirectWrite(_upsert_running(dialect_insert(dialect_name)), column_keys=_RUNNING_KEYS)


def stop_many(connection: Connection, *, clocks: Sequence[tuple[str, str]], now: datetime) -> None:
    """Stop the running clocks among (kind, ref_id) pairs: one prebuilt statement, each pair a
    row of its ``executemany`` (the unique (kind, ref_id) index finds each)."""
    _STOP.execute_many(
        connection, [{"b_kind": kind, "b_ref_id": ref_id, "b_now": now} for kind, ref_id in clocks]
    )


_STOP = DirectWrite(
    update(_CLOCKS)
    .where(
        _CLOCKS.c.kind == bindparam("b_kind"),
        _CLOCKS.c.ref_id == bindparam("b_ref_id"),
        _CLOCKS.c.stopped_at.is_(None),
    )
    .values(stopped_at=bindparam("b_now", type_=_CLOCKS.c.stopped_at.type))
)


async def due_ids(
    session: AsyncSession, *, what: str, now: datetime, limit: int, skip_locked: bool
) -> Sequence[str]:
    """Running clocks whose ``what`` (``overdue`` or ``reminder``) is due and not yet raised.

    On PostgreSQL the rows are locked, skipping those another replica holds.
    """
    raised, at = _columns(what)
    query = (
        select(SlaClock.id)
        .where(SlaClock.stopped_at.is_(None), raised.is_(None), at.is_not(None), at <= now)
        .order_by(at)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list((await session.execute(query)).scalars())


async def claim(session: AsyncSession, *, what: str, clock_id: str, now: datetime) -> bool:
    """Mark ``what`` raised on a running clock if no one did; True if this call did."""
    raised, _ = _columns(what)
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(SlaClock)
        .where(SlaClock.id == clock_id, SlaClock.stopped_at.is_(None), raised.is_(None))
        .values({raised.key: now})
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def get_by_id(session: AsyncSession, *, clock_id: str) -> SlaClock:
    """One clock, as committed now (populate_existing: the identity map may be stale)."""
    result = await session.execute(
        select(SlaClock).where(SlaClock.id == clock_id).execution_options(populate_existing=True)
    )
    return result.scalar_one()


def _columns(what: str) -> tuple[Any, Any]:
    if what == "overdue":
        return SlaClock.overdue_raised_at, SlaClock.due_at
    if what == "reminder":
        return SlaClock.reminder_raised_at, SlaClock.remind_at
    raise ValueError(f"unknown SLA event {what!r}")


async def calendar_years(session: AsyncSession) -> list[CalendarYear]:
    """Every year an admin set."""
    return list((await session.execute(select(CalendarYear))).scalars())


async def get_calendar_year(session: AsyncSession, *, year: int) -> CalendarYear | None:
    """The year an admin set, if any."""
    return await session.get(CalendarYear, year)

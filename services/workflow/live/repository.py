"""Every query of live progress: history entries by id, and who may follow an application."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.applications.models import Application, HistoryEntry
from services.workflow.tasks.models import Task


@dataclass(frozen=True)
class StreamScope:
    """Which entries a stream carries: one application's, one applicant's or one department's."""

    application_id: str | None = None
    applicant_id: str | None = None
    department_org_id: str | None = None

    def matches(self, entry: HistoryEntry) -> bool:
        """Whether ``entry`` belongs on this stream."""
        return (
            (self.application_id is None or entry.application_id == self.application_id)
            and (self.applicant_id is None or entry.applicant_id == self.applicant_id)
            and (
                self.department_org_id is None or entry.department_org_id == self.department_org_id
            )
        )

    def where(self) -> list[ColumnElement[bool]]:
        """The same filter in SQL."""
        clauses: list[ColumnElement[bool]] = []
        if self.application_id is not None:
            clauses.append(HistoryEntry.application_id == self.application_id)
        if self.applicant_id is not None:
            clauses.append(HistoryEntry.applicant_id == self.applicant_id)
        if self.department_org_id is not None:
            clauses.append(HistoryEntry.department_org_id == self.department_org_id)
        return clauses


async def newest_id(session: AsyncSession) -> int:
    """The highest history id committed (0 when there is none)."""
    return int((await session.execute(select(func.max(HistoryEntry.id)))).scalar() or 0)


async def entries_after(session: AsyncSession, *, after: int, limit: int) -> list[HistoryEntry]:
    """Every entry newer than ``after``, oldest first."""
    result = await session.execute(
        select(HistoryEntry).where(HistoryEntry.id > after).order_by(HistoryEntry.id).limit(limit)
    )
    return list(result.scalars())


async def ids_after(session: AsyncSession, *, after: int, limit: int) -> list[int]:
    """The ids of the entries newer than ``after``, oldest first (no entry is loaded)."""
    result = await session.execute(
        select(HistoryEntry.id)
        .where(HistoryEntry.id > after)
        .order_by(HistoryEntry.id)
        .limit(limit)
    )
    return list(result.scalars())


async def existing_ids(session: AsyncSession, *, ids: Sequence[int]) -> list[int]:
    """The ids among ``ids`` whose entries exist now, in order (no entry is loaded)."""
    result = await session.execute(
        select(HistoryEntry.id).where(HistoryEntry.id.in_(ids[:1000])).order_by(HistoryEntry.id)
    )
    return list(result.scalars())


async def entries_with_ids(session: AsyncSession, *, ids: Sequence[int]) -> list[HistoryEntry]:
    """The entries among ``ids`` that exist now, oldest first."""
    result = await session.execute(
        select(HistoryEntry).where(HistoryEntry.id.in_(ids[:1000])).order_by(HistoryEntry.id)
    )
    return list(result.scalars())


async def replay(
    session: AsyncSession, *, scope: StreamScope, after: int, limit: int
) -> list[HistoryEntry]:
    """The newest ``limit`` entries of a stream after ``after``, oldest first."""
    result = await session.execute(
        select(HistoryEntry)
        .where(HistoryEntry.id > after, *scope.where())
        .order_by(HistoryEntry.id.desc())
        .limit(limit)
    )
    return list(reversed(result.scalars().all()))


async def get_application(session: AsyncSession, *, application_id: str) -> Application | None:
    """One application, for the check of who may follow it."""
    return await session.get(Application, application_id)


async def has_task_for(session: AsyncSession, *, application_id: str, org_id: str) -> bool:
    """Whether the department ``org_id`` has (or had) a task on the application."""
    result = await session.execute(
        select(Task.id)
        .where(Task.application_id == application_id, Task.department_org_id == org_id)
        .limit(1)
    )
    return result.first() is not None

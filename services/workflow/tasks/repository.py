"""Every query of branches and tasks, the inbox's included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.applications.models import Application
from services.workflow.tasks.models import ACTIVE_TASK_STATES, Branch, Task


async def branches(
    session: AsyncSession, *, application_id: str, flush: bool = True
) -> list[Branch]:
    """An application's branches (``flush``: what this transaction staged counts too)."""
    if flush:
        await session.flush()
    found = await session.execute(
        select(Branch)
        .where(Branch.application_id == application_id)
        .order_by(Branch.created_at, Branch.item_id)
        .execution_options(populate_existing=True)
    )
    return list(found.scalars())


async def tasks(session: AsyncSession, *, application_id: str, flush: bool = True) -> list[Task]:
    """An application's tasks, oldest first (``flush``: what this transaction staged counts)."""
    if flush:
        await session.flush()
    found = await session.execute(
        select(Task)
        .where(Task.application_id == application_id)
        .order_by(Task.created_at, Task.id)
        .execution_options(populate_existing=True)
    )
    return list(found.scalars())


async def get(session: AsyncSession, *, task_id: str, fresh: bool = False) -> Task | None:
    """One task; ``fresh`` reads it again from the database."""
    if not fresh:
        return await session.get(Task, task_id)
    found = await session.execute(
        select(Task).where(Task.id == task_id).execution_options(populate_existing=True)
    )
    return found.scalar_one_or_none()


async def get_with_application(
    session: AsyncSession, *, task_id: str
) -> tuple[Task, Application] | None:
    """A task and its application, in one query."""
    found = await session.execute(
        select(Task, Application)
        .join(Application, Application.id == Task.application_id)
        .where(Task.id == task_id)
    )
    row = found.first()
    return None if row is None else (row[0], row[1])


async def change_if(
    session: AsyncSession, *, task_id: str, states: Sequence[str], version: int | None,
    values: dict[str, Any],
) -> Task | None:  # fmt: skip
    """Change a task only if it is still in one of ``states`` (and at ``version``): the task as
    changed, or None if it was not.

    The condition is checked by the UPDATE itself, so of two concurrent changes one wins; the
    changed row comes back with it (RETURNING), so nothing is read again.
    """
    condition = [Task.id == task_id, Task.state.in_(states)]
    if version is not None:
        condition.append(Task.version == version)
    changed = await session.execute(
        update(Task)
        .where(*condition)
        .values(**values, version=Task.version + 1)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return changed.scalar_one_or_none()


async def inbox(
    session: AsyncSession,
    *,
    department_org_id: str,
    roles: Sequence[str],
    states: Sequence[str],
    claimed_by: str | None,
    item_id: str | None,
    application_id: str | None,
    due_before: datetime | None,
    descending: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[tuple[Task, Application]]:
    """A department's tasks for ``roles``, by deadline (then id), after a cursor."""
    query = (
        select(Task, Application)
        .join(Application, Application.id == Task.application_id)
        .where(
            Task.department_org_id == department_org_id,
            Task.role.in_(roles),
            Task.state.in_(states),
        )
    )
    if claimed_by is not None:
        query = query.where(Task.claimed_by == claimed_by)
    if item_id is not None:
        query = query.where(Task.item_id == item_id)
    if application_id is not None:
        query = query.where(Task.application_id == application_id)
    if due_before is not None:
        query = query.where(Task.due_at < due_before)
    # Waiting tasks have no deadline yet: they sort as the far future.
    due = Task.due_at
    if after is not None:
        at, last_id = after
        if descending:
            query = query.where(or_(due < at, and_(due == at, Task.id < last_id)))
        else:
            query = query.where(or_(due > at, and_(due == at, Task.id > last_id)))
    order = (due.desc(), Task.id.desc()) if descending else (due.asc(), Task.id.asc())
    query = query.where(due.is_not(None)).order_by(*order).limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def active(session: AsyncSession, *, application_id: str) -> list[Task]:
    """An application's tasks not yet decided or cancelled."""
    await session.flush()  # what this transaction staged counts too
    found = await session.execute(
        select(Task)
        .where(Task.application_id == application_id, Task.state.in_(ACTIVE_TASK_STATES))
        .execution_options(populate_existing=True)
    )
    return list(found.scalars())

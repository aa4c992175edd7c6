"""Every query of branches and tasks, the inbox's included."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, inspect, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from libs.common.database import DirectWrite
from services.workflow import bulk
from services.workflow.applications.models import Application
from services.workflow.tasks.models import ACTIVE_TASK_STATES, Branch, Task


async def branches(
    session: AsyncSession, *, application_id: str, flush: bool = True
) -> list[Branch]:
    """An application's branches (``flush``: what this transaction staged counts too)."""
    if flush:
        await session.flush()
    found = await session.execute(_BRANCHES, {"b_application_id": application_id})
    return list(found.scalars())


async def tasks(session: AsyncSession, *, application_id: str, flush: bool = True) -> list[Task]:
    """An application's tasks, oldest first (``flush``: what this transaction staged counts)."""
    if flush:
        await session.flush()
    found = await session.execute(_TASKS, {"b_application_id": application_id})
    return list(found.scalars())


# Built once (SQLAlchemy caches them, their cache keys too): building the expression and its
# cache key per call cost about as much as running it.
_BRANCHES = (
    select(Branch)
    .where(Branch.application_id == bindparam("b_application_id"))
    .order_by(Branch.created_at, Branch.item_id)
    .execution_options(populate_existing=True)
)
_TASKS = (
    select(Task)
    .where(Task.application_id == bindparam("b_application_id"))
    .order_by(Task.created_at, Task.id)
    .execution_options(populate_existing=True)
)


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


@dataclass
class Locked:
    """A task's application once its write lock is taken, with its tasks (oldest first) and
    branches as they are then."""

    application: Application
    tasks: list[Task]
    branches: list[Branch]


async def lock_application_of(
    session: AsyncSession, *, task_id: str, updated_at: datetime
) -> Locked | None:
    """The application of a task, its tasks and branches, read once its write lock is taken
    (None: no such task).

    As ``applications_repository.lock``, found by the task in the same statement (a prebuilt
    ``UPDATE ... RETURNING id``, straight to the driver); then the application, its tasks and
    its branches are read. All four in one greenlet trip.
    """
    values = {"b_task_id": task_id, "b_at": updated_at}

    def lock_and_read(sync_session: Session) -> Locked | None:
        locked = _LOCK_BY_TASK.execute(sync_session.connection(), values)
        if not locked:
            return None
        by_id = {"b_application_id": locked[0][0]}
        return Locked(
            sync_session.execute(_APPLICATION, by_id).scalar_one(),
            list(sync_session.execute(_TASKS, by_id).scalars()),
            list(sync_session.execute(_BRANCHES, by_id).scalars()),
        )

    return await session.run_sync(lock_and_read)


_APPLICATIONS_TABLE = cast(Table, Application.__table__)
_LOCK_BY_TASK = DirectWrite(
    update(_APPLICATIONS_TABLE)
    .where(
        _APPLICATIONS_TABLE.c.id
        == select(Task.application_id).where(Task.id == bindparam("b_task_id")).scalar_subquery()
    )
    .values(
        version=_APPLICATIONS_TABLE.c.version + 1,
        updated_at=bindparam("b_at", type_=_APPLICATIONS_TABLE.c.updated_at.type),
    )
    .returning(_APPLICATIONS_TABLE.c.id)
)
# The application by id (as it is now, in this transaction): read apart from its tasks, not
# joined to them, so its columns (its form and other JSON) are not decoded once per task.
_APPLICATION = (
    select(Application)
    .where(Application.id == bindparam("b_application_id"))
    .execution_options(populate_existing=True)
)


async def complete_if(
    session: AsyncSession,
    task: Task,
    *,
    states: Sequence[str],
    at: datetime,
    by: str,
    decision: str,
    comment: str | None,
) -> bool:
    """Complete a loaded task (``by`` claims it too) only if it is still in one of ``states`` at
    its version: whether it was. The condition is checked by the UPDATE itself (of two
    concurrent changes one wins; the row it changed comes back); the loaded task takes the
    values as committed, so nothing is read back or flushed again.
    """
    values: dict[str, Any] = {
        "state": "completed", "completed_at": at, "completed_by": by, "decision": decision,
        "comment": comment, "claimed_by": by, "claimed_at": task.claimed_at or at,
    }  # fmt: skip
    parameters = {
        "b_task_id": task.id, "b_version": task.version,
        **{f"b_state_{n}": state for n, state in enumerate(states)},
        **{f"b_{key}": value for key, value in values.items()},
    }  # fmt: skip
    statement = _complete(len(states))
    if not await bulk.run(session, lambda connection: statement.execute(connection, parameters)):
        return False
    for key, value in {**values, "version": task.version + 1}.items():
        set_committed_value(task, key, value)
    return True


_TASKS_TABLE = cast(Table, Task.__table__)
_COMPLETED = ("state", "completed_at", "completed_by", "decision", "comment", "claimed_by",
              "claimed_at")  # fmt: skip


@cache
def _complete(states: int) -> DirectWrite:
    """The conditional completion of a task in one of ``states`` states, built once."""
    table = _TASKS_TABLE
    return DirectWrite(
        update(table)
        .where(
            table.c.id == bindparam("b_task_id"),
            table.c.state.in_([bindparam(f"b_state_{n}") for n in range(states)]),
            table.c.version == bindparam("b_version"),
        )
        .values(
            version=table.c.version + 1,
            **{key: bindparam(f"b_{key}", type_=table.c[key].type) for key in _COMPLETED},
        )
        .returning(table.c.id)
    )


def write_branches(connection: Connection, branches: Sequence[Branch]) -> list[Branch]:
    """Write the branches among ``branches`` this step changed (marking, status, end) with one
    prebuilt UPDATE, take their values as committed, and return them (the caller takes them out
    of the session: its flush would visit them again to write nothing)."""
    changed = [branch for branch in branches if inspect(branch).modified]
    rows = []
    for branch in changed:
        values = {key: getattr(branch, key) for key in _BRANCH_CHANGES}
        rows.append({
            "b_application_id": branch.application_id, "b_item_id": branch.item_id,
            **{f"b_{key}": value for key, value in values.items()},
        })  # fmt: skip
        for key, value in values.items():
            set_committed_value(branch, key, value)
    _UPDATE_BRANCH.execute_many(connection, rows)
    return changed


_BRANCHES_TABLE = cast(Table, Branch.__table__)
_BRANCH_CHANGES = ("marking", "status", "finished_at")
_UPDATE_BRANCH = DirectWrite(
    update(_BRANCHES_TABLE)
    .where(
        _BRANCHES_TABLE.c.application_id == bindparam("b_application_id"),
        _BRANCHES_TABLE.c.item_id == bindparam("b_item_id"),
    )
    .values(
        {key: bindparam(f"b_{key}", type_=_BRANCHES_TABLE.c[key].type) for key in _BRANCH_CHANGES}
    )
)


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

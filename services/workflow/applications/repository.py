"""Every query of applications, their materials and history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Executable, Table, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import dialect_insert
from services.workflow import bulk
from services.workflow.applications.models import Application, ApplicationMaterial, HistoryEntry


async def get(session: AsyncSession, *, application_id: str) -> Application | None:
    """One application, or None."""
    return await session.get(Application, application_id)


async def lock(
    session: AsyncSession, *, application_id: str, updated_at: datetime | None = None
) -> Application | None:
    """The application, as it is once its write lock is taken (None if there is none).

    Bumping ``version`` first makes concurrent actions on one application wait for each other:
    a row lock on PostgreSQL, the database's write lock on SQLite; the row comes back with the
    UPDATE (RETURNING), current. ``updated_at``: set it in the same statement.
    """
    values: dict[str, Any] = {"version": Application.version + 1}
    if updated_at is not None:
        values["updated_at"] = updated_at
    bumped = await session.execute(
        update(Application)
        .where(Application.id == application_id)
        .values(**values)
        .returning(Application)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return bumped.scalar_one_or_none()


async def by_idempotency_key(
    session: AsyncSession, *, applicant_id: str, key: str
) -> Application | None:
    """The application an applicant first submitted with ``key``."""
    found = await session.execute(
        select(Application).where(
            Application.applicant_id == applicant_id, Application.idempotency_key == key
        )
    )
    return found.scalar_one_or_none()


async def list_for_applicant(
    session: AsyncSession,
    *,
    applicant_id: str,
    org_id: str | None,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Application]:
    """An applicant's applications (an enterprise agent's: also the enterprise's), newest first."""
    owner = Application.applicant_id == applicant_id
    if org_id is not None:
        owner = or_(owner, Application.applicant_org_id == org_id)
    query = select(Application).where(owner)
    if status is not None:
        query = query.where(Application.status == status)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                Application.created_at < at,
                and_(Application.created_at == at, Application.id < last_id),
            )
        )
    query = query.order_by(Application.created_at.desc(), Application.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def materials(session: AsyncSession, *, application_id: str) -> list[ApplicationMaterial]:
    """An application's materials, in the order they were listed."""
    await session.flush()  # what this transaction staged counts too
    found = await session.execute(
        select(ApplicationMaterial)
        .where(ApplicationMaterial.application_id == application_id)
        .execution_options(populate_existing=True)
    )
    return list(found.scalars())


async def material_counts(session: AsyncSession, *, application_id: str) -> dict[str, int]:
    """How many of an application's materials are in each state."""
    found = await session.execute(
        select(ApplicationMaterial.state, func.count())
        .where(ApplicationMaterial.application_id == application_id)
        .group_by(ApplicationMaterial.state)
    )
    return dict(found.tuples().all())


async def insert_new(session: AsyncSession, application: Application) -> bool:
    """Insert a new application; False if its (applicant, Idempotency-Key) is already taken.

    One statement (INSERT ... ON CONFLICT DO NOTHING), no savepoint: of two concurrent first
    requests with one key, one inserts and the other finds the first.
    """
    statement = _insert_new_for(session.get_bind().dialect.name)
    inserted = await session.execute(statement, bulk.values_of(application))
    return inserted.scalar_one_or_none() is not None


_TABLE = cast(Table, Application.__table__)


@cache
def _insert_new_for(dialect_name: str) -> Executable:
    """Built once per dialect, when first used: the values come as parameters (building
    ``.values(...)`` per call costs more than running the statement)."""
    statement = dialect_insert(dialect_name)(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.id)
    if dialect_name == "postgresql":
        return statement
    return bulk.sqlite_cached(
        statement, column_keys=[c.key for c in _TABLE.columns], returning=[_TABLE.c.id]
    )


async def history(session: AsyncSession, *, application_id: str) -> list[HistoryEntry]:
    """An application's history, oldest first."""
    found = await session.execute(
        select(HistoryEntry)
        .where(HistoryEntry.application_id == application_id)
        .order_by(HistoryEntry.id)
    )
    return list(found.scalars())


async def awaiting_fetch(session: AsyncSession, *, limit: int) -> list[str]:
    """Ids of submitted applications whose materials are still to be fetched, oldest first."""
    found = await session.execute(
        select(Application.id)
        .where(Application.status == "submitted")
        .order_by(Application.updated_at)
        .limit(limit)
    )
    return list(found.scalars())


def add_all(session: AsyncSession, rows: Sequence[object]) -> None:
    """Stage new rows."""
    session.add_all(rows)

"""Every query of applications, their materials and history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.applications.models import Application, ApplicationMaterial, HistoryEntry


async def get(session: AsyncSession, *, application_id: str) -> Application | None:
    """One application, or None."""
    return await session.get(Application, application_id)


async def lock(session: AsyncSession, *, application_id: str) -> Application | None:
    """The application, read after taking its write lock (None if there is none).

    Bumping ``version`` first makes concurrent actions on one application wait for each other:
    a row lock on PostgreSQL, the database's write lock on SQLite; what is read after it is
    current.
    """
    bumped = await session.execute(
        update(Application)
        .where(Application.id == application_id)
        .values(version=Application.version + 1)
        .execution_options(synchronize_session=False)
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        return None
    found = await session.execute(
        select(Application)
        .where(Application.id == application_id)
        .execution_options(populate_existing=True)
    )
    return found.scalar_one()


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
    after: tuple[str, str] | None,
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
        created, last_id = after
        at = datetime.fromisoformat(created)
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

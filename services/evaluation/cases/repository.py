"""Every query about rectification cases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.cases.models import Case


async def get(session: AsyncSession, case_id: str) -> Case | None:
    """The case ``case_id``."""
    return await session.get(Case, case_id)


async def ids_for_review(session: AsyncSession, review_id: str) -> list[str]:
    """The cases a review opened."""
    rows = await session.execute(
        select(Case.id).where(Case.review_id == review_id).order_by(Case.opened_at, Case.id)
    )
    return [r[0] for r in rows]


async def exists_open_for(session: AsyncSession, *, review_id: str, department_id: str) -> bool:
    """Whether the review already has a case for the department."""
    found = await session.execute(
        select(Case.id).where(Case.review_id == review_id, Case.department_id == department_id)
    )
    return found.first() is not None


async def insert(session: AsyncSession, case: Case) -> Case:
    """Store a new case."""
    session.add(case)
    await session.flush()
    return case


async def search(
    session: AsyncSession,
    *,
    department_id: str | None,
    applicant_id: str | None,
    applicant_org_id: str | None,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Case]:
    """Cases newest first, after the cursor (opened_at, id)."""
    query: Select[tuple[Case]] = select(Case)
    if department_id is not None:
        query = query.where(Case.department_id == department_id)
    if applicant_id is not None:
        owner = Case.applicant_id == applicant_id
        if applicant_org_id is not None:
            owner = or_(owner, Case.applicant_org_id == applicant_org_id)
        query = query.where(owner)
    if status is not None:
        query = query.where(Case.status == status)
    if after is not None:
        at, case_id = after
        query = query.where(or_(Case.opened_at < at, and_(Case.opened_at == at, Case.id < case_id)))
    query = query.order_by(Case.opened_at.desc(), Case.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def overdue_candidates(session: AsyncSession, *, now: datetime, limit: int) -> list[str]:
    """Open cases past their deadline whose overdue event was not raised."""
    query = (
        select(Case.id)
        .where(Case.status == "open", Case.deadline < now, Case.overdue_raised_at.is_(None))
        .order_by(Case.deadline)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [r[0] for r in await session.execute(query)]


async def claim_overdue(session: AsyncSession, *, case_id: str, now: datetime) -> bool:
    """Mark the case's overdue event raised, unless another replica did: True if we did."""
    result = await session.execute(
        update(Case)
        .where(
            Case.id == case_id,
            Case.status == "open",
            Case.deadline < now,
            Case.overdue_raised_at.is_(None),
        )
        .values(overdue_raised_at=now, ever_overdue=True, revision=Case.revision + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)

"""Every query about reviews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.reviews.models import Review, ReviewDepartment


@dataclass(frozen=True)
class ReviewFilters:
    """Which reviews a list shows (the service sets the caller's own limits)."""

    applicant_id: str | None = None
    applicant_org_id: str | None = None
    department_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    max_overall: int | None = None


async def get(session: AsyncSession, review_id: str) -> Review | None:
    """The review ``review_id``."""
    return await session.get(Review, review_id)


async def get_for_application(session: AsyncSession, application_id: str) -> Review | None:
    """The review of an application, if it has one."""
    found = await session.execute(select(Review).where(Review.application_id == application_id))
    return found.scalar_one_or_none()


async def get_by_key(
    session: AsyncSession, applicant_id: str, idempotency_key: str
) -> Review | None:
    """The review ``applicant_id`` submitted with ``idempotency_key``, if any."""
    found = await session.execute(
        select(Review)
        .where(Review.applicant_id == applicant_id, Review.idempotency_key == idempotency_key)
        .limit(1)
    )
    return found.scalar_one_or_none()


async def insert(session: AsyncSession, review: Review) -> Review:
    """Store a new review and its departments."""
    session.add(review)
    await session.flush()
    session.add_all(
        ReviewDepartment(review_id=review.id, department_id=d, created_at=review.created_at)
        for d in review.department_ids
    )
    await session.flush()
    return review


async def search(
    session: AsyncSession,
    *,
    filters: ReviewFilters,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Review]:
    """Reviews newest first, after the cursor (created_at, id)."""
    query: Select[tuple[Review]] = select(Review)
    if filters.department_id is not None:
        query = query.join(ReviewDepartment, ReviewDepartment.review_id == Review.id).where(
            ReviewDepartment.department_id == filters.department_id
        )
    if filters.applicant_id is not None and filters.applicant_org_id is not None:
        query = query.where(
            or_(
                Review.applicant_id == filters.applicant_id,
                Review.applicant_org_id == filters.applicant_org_id,
            )
        )
    elif filters.applicant_id is not None:
        query = query.where(Review.applicant_id == filters.applicant_id)
    if filters.created_from is not None:
        query = query.where(Review.created_at >= filters.created_from)
    if filters.created_to is not None:
        query = query.where(Review.created_at < filters.created_to)
    if filters.max_overall is not None:
        query = query.where(Review.overall <= filters.max_overall)
    if after is not None:
        at, review_id = after
        query = query.where(
            or_(Review.created_at < at, and_(Review.created_at == at, Review.id < review_id))
        )
    query = query.order_by(Review.created_at.desc(), Review.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())

"""Every query on plans."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.plans.models import Plan


async def get(session: AsyncSession, plan_id: str) -> Plan | None:
    """The plan ``plan_id``."""
    return await session.get(Plan, plan_id)


async def get_by_code(session: AsyncSession, code: str) -> Plan | None:
    """The plan with ``code``."""
    result = await session.execute(select(Plan).where(Plan.code == code))
    return result.scalar_one_or_none()


async def page(
    session: AsyncSession, *, published_only: bool, after: str | None, limit: int
) -> list[Plan]:
    """Plans by code after ``after``."""
    query = select(Plan).order_by(Plan.code).limit(limit)
    if published_only:
        query = query.where(Plan.published.is_(True))
    if after is not None:
        query = query.where(Plan.code > after)
    return list((await session.execute(query)).scalars())


def add(session: AsyncSession, plan: Plan) -> None:
    """Stage a new plan."""
    session.add(plan)

"""Every query of the indicator system's versions."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.index.models import IndexSystem


async def latest(session: AsyncSession) -> IndexSystem | None:
    """The newest stored version."""
    found = await session.execute(select(IndexSystem).order_by(IndexSystem.version.desc()).limit(1))
    return found.scalar_one_or_none()


async def get(session: AsyncSession, version: int) -> IndexSystem | None:
    """Version ``version``."""
    return await session.get(IndexSystem, version)


async def all_versions(session: AsyncSession) -> list[IndexSystem]:
    """Every stored version, oldest first."""
    return list(
        (await session.execute(select(IndexSystem).order_by(IndexSystem.version))).scalars()
    )


async def next_version(session: AsyncSession) -> int:
    """The number the next version gets."""
    found = await session.execute(select(func.max(IndexSystem.version)))
    return int(found.scalar() or 0) + 1


async def insert(session: AsyncSession, system: IndexSystem) -> IndexSystem:
    """Store a new version (the primary key refuses a concurrent twin)."""
    session.add(system)
    await session.flush()
    return system

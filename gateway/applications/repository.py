"""Every query on applications and their keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.applications.models import ApiKey, Application
from gateway.plans.models import Plan


async def get(session: AsyncSession, application_id: str) -> Application | None:
    """The application ``application_id``."""
    return await session.get(Application, application_id)


async def find_by_name(session: AsyncSession, org_id: str, name: str) -> Application | None:
    """The organisation's application called ``name``."""
    result = await session.execute(
        select(Application).where(Application.org_id == org_id, Application.name == name)
    )
    return result.scalar_one_or_none()


async def page(
    session: AsyncSession, *, org_id: str | None, after: str | None, limit: int
) -> list[Application]:
    """Applications by id after ``after``, of one organisation or all."""
    query = select(Application).order_by(Application.id).limit(limit)
    if org_id is not None:
        query = query.where(Application.org_id == org_id)
    if after is not None:
        query = query.where(Application.id > after)
    return list((await session.execute(query)).scalars())


def add(session: AsyncSession, row: Application | ApiKey) -> None:
    """Stage a new application or key."""
    session.add(row)


async def get_key(session: AsyncSession, application_id: str, key_id: str) -> ApiKey | None:
    """The application's key ``key_id``."""
    key = await session.get(ApiKey, key_id)
    return key if key is not None and key.application_id == application_id else None


async def keys_of(session: AsyncSession, application_id: str) -> list[ApiKey]:
    """Every key of the application, newest first."""
    result = await session.execute(
        select(ApiKey)
        .where(ApiKey.application_id == application_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id)
    )
    return list(result.scalars())


async def grant_by_hash(
    session: AsyncSession, key_hash: str
) -> Row[tuple[ApiKey, Application, Plan]] | None:
    """The key with ``key_hash``, its application and its plan (the edge's one lookup)."""
    result = await session.execute(
        select(ApiKey, Application, Plan)
        .join(Application, Application.id == ApiKey.application_id)
        .join(Plan, Plan.id == ApiKey.plan_id)
        .where(ApiKey.key_hash == key_hash)
    )
    return result.first()


async def touch_keys(session: AsyncSession, last_used: Mapping[str, datetime]) -> None:
    """Set each key's last use (one UPDATE per key, in one transaction)."""
    for key_id, when in last_used.items():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < when))
            .values(last_used_at=when)
        )

"""Queries of evaluation's read copies and facts that the APIs need."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.facts.models import ApplicationFact, ItemVersionCopy, OrganisationCopy


async def get_application(session: AsyncSession, application_id: str) -> ApplicationFact | None:
    """What evaluation knows of an application from workflow's events."""
    return await session.get(ApplicationFact, application_id)


async def organisations(session: AsyncSession) -> list[OrganisationCopy]:
    """Every organisation evaluation has heard of."""
    return list((await session.execute(select(OrganisationCopy))).scalars())


async def item_names(session: AsyncSession, item_ids: Iterable[str]) -> dict[str, str]:
    """The latest known name of each item."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(ItemVersionCopy.item_id, ItemVersionCopy.name)
        .where(ItemVersionCopy.item_id.in_(ids))
        .order_by(ItemVersionCopy.item_id, ItemVersionCopy.version)
    )
    return {str(item_id): str(name) for item_id, name in rows}


async def items_of_department(session: AsyncSession, department_id: str) -> list[str]:
    """The items a department owns (any version)."""
    rows = await session.execute(
        select(ItemVersionCopy.item_id)
        .where(ItemVersionCopy.owner_org_id == department_id)
        .distinct()
    )
    return sorted(r[0] for r in rows)

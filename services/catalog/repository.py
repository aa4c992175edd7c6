"""The queries every catalogue concept with drafts (service items, bundles) shares; each
concept's own queries are in its ``repository`` module."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.base import Drafted


async def search_drafts(
    session: AsyncSession,
    model: type[Drafted],
    *,
    owner_org_id: str | None,
    after: str | None,
    limit: int,
) -> Sequence[Drafted]:
    """Rows of ``model`` (an item or a bundle) with a working copy not yet published (never
    published, or edited since; not retired), in code order after the cursor."""
    columns = model.__table__.c
    statement = (
        select(model)
        .where(columns.has_unpublished_changes.is_(True), columns.status != "retired")
        .order_by(columns.code)
        .limit(limit)
    )
    if owner_org_id is not None:
        statement = statement.where(columns.owner_org_id == owner_org_id)
    if after is not None:
        statement = statement.where(columns.code > after)
    result = await session.execute(statement)
    return result.scalars().all()

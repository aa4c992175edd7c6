"""Every query about the exchange's copy of the catalogue."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.exchange.datasets.models import ExchangeDataset


async def get(session: AsyncSession, *, dataset_id: str) -> ExchangeDataset | None:
    """The dataset with ``dataset_id``."""
    return await session.get(ExchangeDataset, dataset_id)


async def get_for_update(session: AsyncSession, *, dataset_id: str) -> ExchangeDataset | None:
    """The dataset, locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    result = await session.execute(
        select(ExchangeDataset)
        .where(ExchangeDataset.id == dataset_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


def add(session: AsyncSession, dataset: ExchangeDataset) -> None:
    """Stage a new dataset copy."""
    session.add(dataset)


async def search(
    session: AsyncSession,
    *,
    open_only: bool,
    owner_org_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> Sequence[ExchangeDataset]:
    """Datasets in code order after the cursor; ``open_only`` keeps open, published ones."""
    statement = select(ExchangeDataset).order_by(ExchangeDataset.code).limit(limit)
    if open_only:
        statement = statement.where(
            ExchangeDataset.open_type == "open", ExchangeDataset.status == "published"
        )
    if owner_org_id is not None:
        statement = statement.where(ExchangeDataset.owner_org_id == owner_org_id)
    if status is not None:
        statement = statement.where(ExchangeDataset.status == status)
    if after is not None:
        statement = statement.where(ExchangeDataset.code > after)
    result = await session.execute(statement)
    return result.scalars().all()

"""Every query about datasets and their versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.datasets.models import Dataset, DatasetVersion


@dataclass(frozen=True)
class DatasetFilters:
    """What a list of datasets is narrowed to; ``None`` leaves a filter out."""

    status: str
    code: str | None = None
    owner_org_id: str | None = None
    share_type: str | None = None
    open_type: str | None = None
    subject_kind: str | None = None
    name_contains: str | None = None


async def get(session: AsyncSession, *, dataset_id: str) -> Dataset | None:
    """The dataset with ``dataset_id``."""
    return await session.get(Dataset, dataset_id)


async def get_by_code(session: AsyncSession, *, code: str) -> Dataset | None:
    """The dataset with ``code``."""
    result = await session.execute(select(Dataset).where(Dataset.code == code))
    return result.scalar_one_or_none()


def add(session: AsyncSession, entity: Dataset | DatasetVersion) -> None:
    """Stage a new dataset or version."""
    session.add(entity)


async def get_version(
    session: AsyncSession, *, dataset_id: str, version: int
) -> DatasetVersion | None:
    """One published version of a dataset."""
    return await session.get(DatasetVersion, (dataset_id, version))


async def list_versions(
    session: AsyncSession, *, dataset_id: str, after: int | None, limit: int
) -> Sequence[DatasetVersion]:
    """A dataset's versions, oldest first, after the cursor."""
    statement = (
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id)
        .order_by(DatasetVersion.version)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(DatasetVersion.version > after)
    result = await session.execute(statement)
    return result.scalars().all()


async def search_published(
    session: AsyncSession, *, filters: DatasetFilters, after: str | None, limit: int
) -> Sequence[tuple[Dataset, DatasetVersion]]:
    """Published (or retired) datasets with their latest version, in code order, filtered on
    what that version says."""
    statement: Select[tuple[Dataset, DatasetVersion]] = (
        select(Dataset, DatasetVersion)
        .join(
            DatasetVersion,
            and_(
                DatasetVersion.dataset_id == Dataset.id,
                DatasetVersion.version == Dataset.published_version,
            ),
        )
        .where(Dataset.status == filters.status)
        .order_by(Dataset.code)
        .limit(limit)
    )
    if filters.code is not None:
        statement = statement.where(Dataset.code == filters.code)
    if filters.owner_org_id is not None:
        statement = statement.where(DatasetVersion.owner_org_id == filters.owner_org_id)
    if filters.share_type is not None:
        statement = statement.where(DatasetVersion.share_type == filters.share_type)
    if filters.open_type is not None:
        statement = statement.where(DatasetVersion.open_type == filters.open_type)
    if filters.subject_kind is not None:
        statement = statement.where(DatasetVersion.subject_kind == filters.subject_kind)
    if filters.name_contains:
        statement = statement.where(
            or_(
                DatasetVersion.name.icontains(filters.name_contains, autoescape=True),
                DatasetVersion.name_en.icontains(filters.name_contains, autoescape=True),
            )
        )
    if after is not None:
        statement = statement.where(Dataset.code > after)
    result = await session.execute(statement)
    return [(row[0], row[1]) for row in result.all()]


async def search_drafts(
    session: AsyncSession, *, filters: DatasetFilters, after: str | None, limit: int
) -> Sequence[Dataset]:
    """Datasets never published, in code order, filtered on their working copy."""
    statement = select(Dataset).where(Dataset.status == "draft").order_by(Dataset.code).limit(limit)
    if filters.code is not None:
        statement = statement.where(Dataset.code == filters.code)
    if filters.owner_org_id is not None:
        statement = statement.where(Dataset.owner_org_id == filters.owner_org_id)
    if filters.share_type is not None:
        statement = statement.where(Dataset.share_type == filters.share_type)
    if filters.open_type is not None:
        statement = statement.where(Dataset.open_type == filters.open_type)
    if filters.subject_kind is not None:
        statement = statement.where(Dataset.subject_kind == filters.subject_kind)
    if filters.name_contains:
        statement = statement.where(
            or_(
                Dataset.name.icontains(filters.name_contains, autoescape=True),
                Dataset.name_en.icontains(filters.name_contains, autoescape=True),
            )
        )
    if after is not None:
        statement = statement.where(Dataset.code > after)
    result = await session.execute(statement)
    return result.scalars().all()

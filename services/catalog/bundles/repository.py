"""Every query about bundles, their versions and the item versions they use."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.bundles.models import Bundle, BundleVersion, BundleVersionItem


def add(session: AsyncSession, entity: Bundle | BundleVersion | BundleVersionItem) -> None:
    """Stage a new bundle, version or version item."""
    session.add(entity)


async def get(session: AsyncSession, *, bundle_id: str) -> Bundle | None:
    """The bundle with ``bundle_id``."""
    return await session.get(Bundle, bundle_id)


async def get_by_code(session: AsyncSession, *, code: str) -> Bundle | None:
    """The bundle with ``code``."""
    result = await session.execute(select(Bundle).where(Bundle.code == code))
    return result.scalar_one_or_none()


async def get_version(
    session: AsyncSession, *, bundle_id: str, version: int
) -> BundleVersion | None:
    """One published version of a bundle."""
    return await session.get(BundleVersion, (bundle_id, version))


async def list_versions(
    session: AsyncSession, *, bundle_id: str, after: int | None, limit: int
) -> Sequence[BundleVersion]:
    """A bundle's versions, oldest first, after the cursor."""
    statement = (
        select(BundleVersion)
        .where(BundleVersion.bundle_id == bundle_id)
        .order_by(BundleVersion.version)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(BundleVersion.version > after)
    result = await session.execute(statement)
    return result.scalars().all()


async def unlist(session: AsyncSession, *, bundle_id: str) -> None:
    """Take every version of a bundle out of the public search."""
    await session.execute(
        update(BundleVersion)
        .where(BundleVersion.bundle_id == bundle_id, BundleVersion.listed.is_(True))
        .values(listed=False)
    )


async def listed_item_ids(session: AsyncSession, *, bundle_id: str) -> Sequence[str]:
    """The items of a bundle's listed (latest published) version."""
    result = await session.execute(
        select(BundleVersionItem.item_id)
        .join(
            BundleVersion,
            (BundleVersion.bundle_id == BundleVersionItem.bundle_id)
            & (BundleVersion.version == BundleVersionItem.version),
        )
        .where(BundleVersion.bundle_id == bundle_id, BundleVersion.listed.is_(True))
    )
    return result.scalars().all()


async def search_published(
    session: AsyncSession,
    *,
    keyword: str | None,
    code: str | None,
    owner_org_id: str | None,
    item_id: str | None,
    after: str | None,
    limit: int,
) -> Sequence[BundleVersion]:
    """Listed bundle versions matching every filter, in code order, after the cursor."""
    statement = (
        select(BundleVersion)
        .where(BundleVersion.listed.is_(True))
        .order_by(BundleVersion.code)
        .limit(limit)
    )
    if keyword:
        statement = statement.where(BundleVersion.text_search.contains(keyword, autoescape=True))
    if code is not None:
        statement = statement.where(BundleVersion.code == code)
    if owner_org_id is not None:
        statement = statement.where(BundleVersion.owner_org_id == owner_org_id)
    if item_id is not None:
        members = select(BundleVersionItem.bundle_id).where(
            BundleVersionItem.item_id == item_id,
            BundleVersionItem.bundle_id == BundleVersion.bundle_id,
            BundleVersionItem.version == BundleVersion.version,
        )
        statement = statement.where(members.exists())
    if after is not None:
        statement = statement.where(BundleVersion.code > after)
    result = await session.execute(statement)
    return result.scalars().all()

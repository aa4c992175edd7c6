"""Every query of the catalogue's read copy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.catalogue.models import OfferingVersion


async def get(
    session: AsyncSession, *, kind: str, offering_id: str, version: int
) -> OfferingVersion | None:
    """One version, or None."""
    return await session.get(OfferingVersion, (kind, offering_id, version))


async def latest(session: AsyncSession, *, kind: str, offering_id: str) -> OfferingVersion | None:
    """The newest version of an offering, retired or not."""
    newest = (
        select(func.max(OfferingVersion.version))
        .where(OfferingVersion.kind == kind, OfferingVersion.offering_id == offering_id)
        .scalar_subquery()
    )
    found = await session.execute(
        select(OfferingVersion).where(
            OfferingVersion.kind == kind,
            OfferingVersion.offering_id == offering_id,
            OfferingVersion.version == newest,
        )
    )
    return found.scalar_one_or_none()


async def version_header(
    session: AsyncSession, *, kind: str, offering_id: str, version: int | None
) -> tuple[int, datetime | None] | None:
    """(version, retired_at) of one version, or of the newest when ``version`` is None.

    The snapshot is not read: versions never change, so callers keep them parsed.
    """
    query = select(OfferingVersion.version, OfferingVersion.retired_at).where(
        OfferingVersion.kind == kind, OfferingVersion.offering_id == offering_id
    )
    if version is not None:
        query = query.where(OfferingVersion.version == version)
    row = (await session.execute(query.order_by(OfferingVersion.version.desc()).limit(1))).first()
    return None if row is None else (row[0], row[1])


async def get_many(
    session: AsyncSession, *, kind: str, keys: list[tuple[str, int]]
) -> dict[tuple[str, int], OfferingVersion]:
    """Several versions of one kind by (offering id, version)."""
    if not keys:
        return {}
    ids = sorted({k for k, _ in keys})
    found = await session.execute(
        select(OfferingVersion).where(
            OfferingVersion.kind == kind, OfferingVersion.offering_id.in_(ids)
        )
    )
    wanted = set(keys)
    return {
        (v.offering_id, v.version): v
        for v in found.scalars()
        if (v.offering_id, v.version) in wanted
    }


def add(session: AsyncSession, version: OfferingVersion) -> None:
    """Stage a new version."""
    session.add(version)


async def retire(session: AsyncSession, *, kind: str, offering_id: str, at: datetime) -> None:
    """Mark every version of an offering retired (the first retirement's time stays)."""
    await session.execute(
        update(OfferingVersion)
        .where(
            OfferingVersion.kind == kind,
            OfferingVersion.offering_id == offering_id,
            OfferingVersion.retired_at.is_(None),
        )
        .values(retired_at=at)
    )

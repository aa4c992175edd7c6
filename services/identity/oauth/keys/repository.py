"""Every query on signing keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.oauth.keys.models import SigningKey


async def list_keys(session: AsyncSession) -> Sequence[SigningKey]:
    """Every stored key, oldest first."""
    result = await session.scalars(select(SigningKey).order_by(SigningKey.activates_at))
    return result.all()


async def markers(session: AsyncSession) -> set[tuple[str, datetime | None]]:
    """A cheap fingerprint of the stored keys: each kid and when it retires."""
    rows = await session.execute(select(SigningKey.kid, SigningKey.retired_at))
    return {(kid, retired_at) for kid, retired_at in rows.tuples()}


async def algorithms(session: AsyncSession) -> set[str]:
    """The algorithms that have a key."""
    return set((await session.scalars(select(SigningKey.alg).distinct())).all())


async def add(session: AsyncSession, key: SigningKey) -> None:
    """Store a new key."""
    session.add(key)
    await session.flush()


async def retire_current(session: AsyncSession, *, alg: str, at: datetime) -> list[str]:
    """Mark every not-yet-retired key of ``alg`` as retiring ``at``; returns their kids."""
    kids = list(
        (
            await session.scalars(
                select(SigningKey.kid).where(SigningKey.alg == alg, SigningKey.retired_at.is_(None))
            )
        ).all()
    )
    if kids:
        await session.execute(
            update(SigningKey).where(SigningKey.kid.in_(kids)).values(retired_at=at)
        )
    return kids


async def delete_retired_before(session: AsyncSession, *, cutoff: datetime) -> list[str]:
    """Delete keys retired before ``cutoff``; returns their kids."""
    kids = list(
        (await session.scalars(select(SigningKey.kid).where(SigningKey.retired_at < cutoff))).all()
    )
    if kids:
        await session.execute(delete(SigningKey).where(SigningKey.kid.in_(kids)))
    return kids

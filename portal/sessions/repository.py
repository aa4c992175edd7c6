"""Every query on sessions and pending sign-ins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.sessions.models import PendingSignIn, PortalSession


async def get_session(session: AsyncSession, session_id: str) -> PortalSession | None:
    """The session row with ``session_id``, if any."""
    return await session.get(PortalSession, session_id)


async def sessions_of(session: AsyncSession, user_id: str) -> list[PortalSession]:
    """Every session of ``user_id``."""
    found = await session.scalars(select(PortalSession).where(PortalSession.user_id == user_id))
    return list(found)


async def delete_sessions(session: AsyncSession, session_ids: list[str]) -> None:
    """Drop the sessions with these ids."""
    if session_ids:
        await session.execute(delete(PortalSession).where(PortalSession.id.in_(session_ids)))


async def delete_expired(session: AsyncSession, now: datetime) -> int:
    """Drop sessions and pending sign-ins past their end; how many sessions went."""
    gone = await session.execute(delete(PortalSession).where(PortalSession.expires_at <= now))
    await session.execute(delete(PendingSignIn).where(PendingSignIn.expires_at <= now))
    return int(getattr(gone, "rowcount", 0) or 0)


async def claim_refresh(session: AsyncSession, session_id: str, generation: int) -> bool:
    """Take the right to refresh: bump the generation if nobody else did first."""
    claimed = await session.execute(
        update(PortalSession)
        .where(PortalSession.id == session_id, PortalSession.token_generation == generation)
        .values(token_generation=generation + 1)
    )
    return int(getattr(claimed, "rowcount", 0) or 0) == 1


async def take_pending(session: AsyncSession, pending_id: str) -> PendingSignIn | None:
    """The pending sign-in with ``pending_id``, removed (it is single use)."""
    pending = await session.get(PendingSignIn, pending_id)
    if pending is not None:
        await session.delete(pending)
    return pending

"""Every query on clients."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.oauth.clients.models import OAuthClient


async def get(session: AsyncSession, client_id: str) -> OAuthClient | None:
    """The client ``client_id``, if registered."""
    return await session.get(OAuthClient, client_id)


async def add(session: AsyncSession, client: OAuthClient) -> None:
    """Store a new client."""
    session.add(client)
    await session.flush()


async def page(session: AsyncSession, *, after: str | None, limit: int) -> Sequence[OAuthClient]:
    """Up to ``limit`` clients by id, after ``after``."""
    query = select(OAuthClient).order_by(OAuthClient.client_id).limit(limit)
    if after is not None:
        query = query.where(OAuthClient.client_id > after)
    return (await session.scalars(query)).all()

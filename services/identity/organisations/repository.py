"""Every query about organisations and memberships."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.organisations.models import Membership, Organisation


async def get(session: AsyncSession, *, org_id: str) -> Organisation | None:
    """The organisation with ``org_id``."""
    return await session.get(Organisation, org_id)


async def get_by_credit_code_hash(
    session: AsyncSession, *, credit_code_hash: str
) -> Organisation | None:
    """The organisation registered under a credit code."""
    result = await session.execute(
        select(Organisation).where(Organisation.credit_code_hash == credit_code_hash)
    )
    return result.scalar_one_or_none()


async def search(
    session: AsyncSession,
    *,
    kind: str | None,
    region_codes: Sequence[str] | None,
    name_contains: str | None,
    after: str | None,
    limit: int,
) -> Sequence[Organisation]:
    """Organisations matching every given filter, in id order, after the cursor."""
    statement = select(Organisation).order_by(Organisation.id).limit(limit)
    if kind:
        statement = statement.where(Organisation.kind == kind)
    if region_codes is not None:
        statement = statement.where(Organisation.region_code.in_(region_codes))
    if name_contains:
        statement = statement.where(Organisation.name.contains(name_contains, autoescape=True))
    if after:
        statement = statement.where(Organisation.id > after)
    result = await session.execute(statement)
    return result.scalars().all()


def add(session: AsyncSession, entity: Organisation | Membership) -> None:
    """Stage a new organisation or membership."""
    session.add(entity)


async def memberships_of_user(session: AsyncSession, *, user_id: str) -> Sequence[Membership]:
    """Every role a person holds."""
    result = await session.execute(
        select(Membership).where(Membership.user_id == user_id).order_by(Membership.created_at)
    )
    return result.scalars().all()


async def memberships_of_users(
    session: AsyncSession, *, user_ids: Sequence[str]
) -> Sequence[Membership]:
    """Every role of each of several people, in one query."""
    if not user_ids:
        return []
    result = await session.execute(
        select(Membership).where(Membership.user_id.in_(user_ids)).order_by(Membership.created_at)
    )
    return result.scalars().all()


async def memberships_of_org(
    session: AsyncSession, *, org_id: str, after: str | None, limit: int
) -> Sequence[Membership]:
    """The roles people hold in an organisation, in id order, after the cursor."""
    statement = (
        select(Membership).where(Membership.org_id == org_id).order_by(Membership.id).limit(limit)
    )
    if after:
        statement = statement.where(Membership.id > after)
    result = await session.execute(statement)
    return result.scalars().all()


async def get_membership(session: AsyncSession, *, membership_id: str) -> Membership | None:
    """One membership."""
    return await session.get(Membership, membership_id)


async def find_membership(
    session: AsyncSession, *, user_id: str, org_id: str | None, role: str
) -> Membership | None:
    """The membership giving ``role`` to a person in an organisation (or platform-wide)."""
    condition = Membership.org_id.is_(None) if org_id is None else Membership.org_id == org_id
    result = await session.execute(
        select(Membership).where(Membership.user_id == user_id, Membership.role == role, condition)
    )
    return result.scalar_one_or_none()


async def delete_membership(session: AsyncSession, *, membership_id: str) -> None:
    """Remove one membership."""
    await session.execute(delete(Membership).where(Membership.id == membership_id))

"""Every query about people."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.ids import utcnow
from services.identity.organisations.models import Membership
from services.identity.people.models import EmailChange, User


async def get(session: AsyncSession, *, user_id: str) -> User | None:
    """The person with ``user_id``."""
    return await session.get(User, user_id)


async def find_existing(
    session: AsyncSession, *, resident_id_hash: str, phone: str, email: str | None
) -> User | None:
    """A person already holding any of these identifiers."""
    conditions = [User.resident_id_hash == resident_id_hash, User.phone == phone]
    if email:
        conditions.append(User.email == email)
    result = await session.execute(select(User).where(or_(*conditions)).limit(1))
    return result.scalar_one_or_none()


async def find_by_login(
    session: AsyncSession, *, phone: str | None, email: str | None, resident_id_hash: str | None
) -> User | None:
    """The person a sign-in name designates (phone, e-mail or resident id number)."""
    if phone:
        condition = User.phone == phone
    elif email:
        condition = User.email == email
    elif resident_id_hash:
        condition = User.resident_id_hash == resident_id_hash
    else:
        return None
    result = await session.execute(select(User).where(condition))
    return result.scalar_one_or_none()


async def search(
    session: AsyncSession,
    *,
    name_prefix: str | None,
    phone: str | None,
    resident_id_hash: str | None,
    org_id: str | None,
    after: str | None,
    limit: int,
) -> Sequence[User]:
    """People matching every given filter, in id order, after the cursor."""
    statement = select(User).order_by(User.id).limit(limit)
    if name_prefix:
        statement = statement.where(User.name.startswith(name_prefix, autoescape=True))
    if phone:
        statement = statement.where(User.phone == phone)
    if resident_id_hash:
        statement = statement.where(User.resident_id_hash == resident_id_hash)
    if org_id:
        members = select(Membership.user_id).where(Membership.org_id == org_id)
        statement = statement.where(User.id.in_(members))
    if after:
        statement = statement.where(User.id > after)
    result = await session.execute(statement)
    return result.scalars().all()


def add(session: AsyncSession, user: User) -> None:
    """Stage a new person."""
    session.add(user)


async def pending_email_change(session: AsyncSession, *, user_id: str) -> EmailChange | None:
    """The e-mail change waiting for its code, if any."""
    return await session.get(EmailChange, user_id)


async def put_email_change(
    session: AsyncSession, *, user_id: str, email: str, code_hash: str, expires_at: datetime
) -> None:
    """Store a pending e-mail change, replacing the person's previous one."""
    change = await session.get(EmailChange, user_id)
    if change is None:
        change = EmailChange(user_id=user_id)
        session.add(change)
    change.email = email
    change.code_hash = code_hash
    change.attempts = 0
    change.created_at = utcnow()
    change.expires_at = expires_at
    await session.flush()


async def drop_email_change(session: AsyncSession, *, user_id: str) -> None:
    """Forget a person's pending e-mail change."""
    change = await session.get(EmailChange, user_id)
    if change is not None:
        await session.delete(change)
        await session.flush()


async def holder_of_email(session: AsyncSession, *, email: str) -> str | None:
    """The id of the account using ``email``, if any."""
    holder: str | None = await session.scalar(select(User.id).where(User.email == email))
    return holder

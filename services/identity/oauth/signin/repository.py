"""Every query of signing in: sessions, failures per address, the lockout fields of accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.oauth.signin.models import IdpSession, SignInFailure
from services.identity.people.models import User


async def count_failures(session: AsyncSession, *, ip: str, since: datetime) -> int:
    """Failed sign-ins from ``ip`` since ``since``."""
    count = await session.scalar(
        select(func.count())
        .select_from(SignInFailure)
        .where(SignInFailure.ip == ip, SignInFailure.occurred_at > since)
    )
    return int(count or 0)


def add_failure(session: AsyncSession, failure: SignInFailure) -> None:
    """Record one failed sign-in of an address."""
    session.add(failure)


async def prune_failures(session: AsyncSession, *, before: datetime) -> None:
    """Forget failures older than the window."""
    await session.execute(delete(SignInFailure).where(SignInFailure.occurred_at < before))


async def count_account_failure(session: AsyncSession, *, user_id: str) -> int:
    """Add one to an account's consecutive failures; returns the new count."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_sign_ins=User.failed_sign_ins + 1)
        .returning(User.failed_sign_ins)
        .execution_options(synchronize_session=False)
    )
    return int(result.scalar_one())


async def lock_account(session: AsyncSession, *, user_id: str, until: datetime) -> None:
    """Lock an account until ``until`` and start counting afresh."""
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(locked_until=until, failed_sign_ins=0)
        .execution_options(synchronize_session=False)
    )


async def clear_account_failures(
    session: AsyncSession, *, user_id: str, password_hash: str | None
) -> None:
    """Reset an account's failures after a good sign-in, upgrading its hash if needed."""
    values: dict[str, object] = {"failed_sign_ins": 0, "locked_until": None}
    if password_hash is not None:
        values["password_hash"] = password_hash
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def add_session(session: AsyncSession, idp_session: IdpSession) -> None:
    """Stage a new identity-provider session."""
    session.add(idp_session)


async def get_session(session: AsyncSession, *, token_hash: str) -> IdpSession | None:
    """The session whose cookie has this hash."""
    result = await session.execute(select(IdpSession).where(IdpSession.token_hash == token_hash))
    return result.scalars().one_or_none()


async def prune_sessions(session: AsyncSession, *, before: datetime) -> None:
    """Delete sessions that expired before ``before``."""
    await session.execute(delete(IdpSession).where(IdpSession.expires_at < before))


async def revoke_sessions_of(session: AsyncSession, *, user_id: str, now: datetime) -> int:
    """End every live provider session of a person; how many were ended."""
    result = await session.execute(
        update(IdpSession)
        .where(IdpSession.user_id == user_id, IdpSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)

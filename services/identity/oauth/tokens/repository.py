"""Every query on codes, refresh tokens and revoked access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.oauth.tokens.models import (
    AuthorizationCode,
    RefreshToken,
    RevokedAccessToken,
)


def add_code(session: AsyncSession, code: AuthorizationCode) -> None:
    """Stage a new authorization code."""
    session.add(code)


async def get_code(session: AsyncSession, code_hash: str) -> AuthorizationCode | None:
    """The code with this hash, used or not."""
    return await session.get(AuthorizationCode, code_hash)


async def consume_code(
    session: AsyncSession,
    *,
    code_hash: str,
    now: datetime,
    family_id: str | None,
    access_jti: str,
    access_expires_at: datetime,
) -> bool:
    """Mark an unused code used, recording what it issued; False if it was already used."""
    result = await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used_at.is_(None))
        .values(
            used_at=now,
            family_id=family_id,
            access_jti=access_jti,
            access_expires_at=access_expires_at,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_refresh_token(session: AsyncSession, token: RefreshToken) -> None:
    """Stage a new refresh token."""
    session.add(token)


async def consume_refresh_token(
    session: AsyncSession, *, token_hash: str, client_id: str, now: datetime
) -> bool:
    """Atomically mark a live refresh token of ``client_id`` used; False if it is unknown,
    someone else's, used, revoked or expired by now."""
    result = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.client_id == client_id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """The refresh token with this hash, in any state."""
    result = await session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    )
    return result.scalars().one_or_none()


async def revoke_family(
    session: AsyncSession, *, family_id: str, now: datetime
) -> Sequence[tuple[str, datetime]]:
    """Revoke every refresh token of a family; returns the still-live access tokens it issued."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    rows = await session.execute(
        select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
            RefreshToken.family_id == family_id, RefreshToken.access_expires_at > now
        )
    )
    return [(jti, expires_at) for jti, expires_at in rows.tuples()]


async def deny_access_tokens(
    session: AsyncSession, *, tokens: Sequence[tuple[str, datetime]], now: datetime
) -> None:
    """Put access tokens on the denylist until they expire (a repeat is ignored)."""
    if not tokens:
        return
    rows = [{"jti": jti, "expires_at": until, "revoked_at": now} for jti, until in tokens]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(RevokedAccessToken).values(rows).on_conflict_do_nothing(index_elements=["jti"])
    )


async def is_access_token_revoked(session: AsyncSession, jti: str) -> bool:
    """Whether the access token ``jti`` was revoked."""
    return bool(await session.scalar(select(exists().where(RevokedAccessToken.jti == jti))))


async def prune(session: AsyncSession, *, now: datetime, codes_before: datetime) -> None:
    """Forget expired revocations, expired refresh tokens and old authorization codes."""
    await session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at < now))
    await session.execute(delete(RefreshToken).where(RefreshToken.expires_at < now))
    await session.execute(
        delete(AuthorizationCode).where(AuthorizationCode.expires_at < codes_before)
    )

"""Every query on codes, refresh tokens and revoked access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from libs.common.database import dialect_insert
from services.identity.oauth.tokens.models import (
    AuthorizationCode,
    RefreshToken,
    RevokedAccessToken,
)
from services.identity.organisations.models import Membership
from services.identity.people.models import User


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


# The refresh grant is the hot path: its statements are built once, in SQLAlchemy Core (no
# unit of work, no per-call statement construction), and it runs three of them — one read, one
# conditional consume, one insert — besides BEGIN and COMMIT.
_refresh_tokens = cast(Table, RefreshToken.__table__)
_users = cast(Table, User.__table__)
_memberships = cast(Table, Membership.__table__)

_ROTATION_READ = (
    select(
        _refresh_tokens.c.family_id,
        _refresh_tokens.c.client_id,
        _refresh_tokens.c.user_id,
        _refresh_tokens.c.org_id,
        _refresh_tokens.c.scope,
        _refresh_tokens.c.auth_time,
        _refresh_tokens.c.amr,
        _refresh_tokens.c.generation,
        _refresh_tokens.c.expires_at,
        _refresh_tokens.c.used_at,
        _refresh_tokens.c.revoked_at,
        _users.c.status,
        _users.c.acr,
        _memberships.c.org_id.label("member_of"),
        _memberships.c.role,
    )
    .select_from(
        _refresh_tokens.outerjoin(_users, _users.c.id == _refresh_tokens.c.user_id).outerjoin(
            _memberships,
            and_(
                _memberships.c.user_id == _refresh_tokens.c.user_id,
                # Only the roles a token for this organisation carries: platform-wide ones and
                # those held in the organisation acted for.
                or_(
                    _memberships.c.org_id.is_(None),
                    _memberships.c.org_id == _refresh_tokens.c.org_id,
                ),
            ),
        )
    )
    .where(_refresh_tokens.c.token_hash == bindparam("token_hash"))
    .order_by(_memberships.c.created_at)
)
_CONSUME = (
    update(_refresh_tokens)
    .where(
        _refresh_tokens.c.token_hash == bindparam("presented"),
        _refresh_tokens.c.used_at.is_(None),
        _refresh_tokens.c.revoked_at.is_(None),
    )
    .values(used_at=bindparam("consumed_at"))
)
_STATE = select(_refresh_tokens.c.used_at, _refresh_tokens.c.revoked_at).where(
    _refresh_tokens.c.token_hash == bindparam("token_hash")
)
_INSERT = insert(_refresh_tokens)


@dataclass(frozen=True, slots=True)
class Rotation:
    """A presented refresh token, its holder's account state and roles, read in one query."""

    family_id: str
    client_id: str
    user_id: str
    org_id: str | None
    scope: str
    auth_time: datetime
    amr: list[str]
    generation: int
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    # None when the account is gone.
    user_status: str | None
    acr: int
    # (organisation or None, role): platform-wide roles and roles in ``org_id``, oldest first.
    memberships: tuple[tuple[str | None, str], ...]


async def rotation(session: AsyncSession, *, token_hash: str) -> Rotation | None:
    """The refresh token with this hash (any state) with its holder's status, assurance level
    and the memberships that count for it; None if no such token."""
    rows = (await session.execute(_ROTATION_READ, {"token_hash": token_hash})).all()
    if not rows:
        return None
    first = rows[0]
    return Rotation(
        family_id=first.family_id,
        client_id=first.client_id,
        user_id=first.user_id,
        org_id=first.org_id,
        scope=first.scope,
        auth_time=first.auth_time,
        amr=first.amr,
        generation=first.generation,
        expires_at=first.expires_at,
        used_at=first.used_at,
        revoked_at=first.revoked_at,
        user_status=first.status,
        acr=first.acr or 1,
        memberships=tuple((row.member_of, row.role) for row in rows if row.role is not None),
    )


async def consume_refresh_token(session: AsyncSession, *, token_hash: str, now: datetime) -> bool:
    """Mark a refresh token used unless it is used or revoked already; False if it was."""
    result = await session.execute(_CONSUME, {"presented": token_hash, "consumed_at": now})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def refresh_token_state(
    session: AsyncSession, *, token_hash: str
) -> tuple[datetime | None, datetime | None]:
    """When a refresh token was used and revoked (None for not yet)."""
    row = (await session.execute(_STATE, {"token_hash": token_hash})).one()
    return row.used_at, row.revoked_at


async def insert_refresh_token(session: AsyncSession, values: dict[str, object]) -> None:
    """Insert a refresh token row (every column given)."""
    await session.execute(_INSERT, values)


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
    return await _revoke_refresh_tokens(session, RefreshToken.family_id == family_id, now=now)


async def _revoke_refresh_tokens(
    session: AsyncSession, which: ColumnElement[bool], *, now: datetime
) -> Sequence[tuple[str, datetime]]:
    await session.execute(
        update(RefreshToken)
        .where(which, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    rows = await session.execute(
        select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
            which, RefreshToken.access_expires_at > now
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
    insert = dialect_insert(session.bind.dialect.name if session.bind is not None else "sqlite")
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


async def revoke_tokens_of(
    session: AsyncSession, *, user_id: str, now: datetime
) -> Sequence[tuple[str, datetime]]:
    """Revoke every refresh token of a person, with every client; returns the still-live
    access tokens they issued."""
    return await _revoke_refresh_tokens(session, RefreshToken.user_id == user_id, now=now)

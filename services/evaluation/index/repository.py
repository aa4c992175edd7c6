"""Every query of the indicator system's versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Date,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from libs.common.database import DirectRead, dialect_insert
from services.evaluation.clock import utcnow
from services.evaluation.index.models import IndexSystem, StoredRanking
from services.evaluation.indicators.models import indicator_generation

RANKINGS = cast(Table, StoredRanking.__table__)
GENERATION = indicator_generation
KEY = ("scope_kind", "level", "period_start", "period_end", "system_version")


class RankingKey(NamedTuple):
    """What a stored ranking is the ranking of."""

    scope_kind: str
    level: str  # "" for departments
    period_start: date
    period_end: date
    system_version: int


async def latest(session: AsyncSession) -> IndexSystem | None:
    """The newest stored version."""
    found = await session.execute(select(IndexSystem).order_by(IndexSystem.version.desc()).limit(1))
    return found.scalar_one_or_none()


async def latest_version(session: AsyncSession) -> int:
    """The newest stored version's number (0, the built-in default, if none)."""
    found = await session.execute(select(func.max(IndexSystem.version)))
    return int(found.scalar() or 0)


async def get(session: AsyncSession, version: int) -> IndexSystem | None:
    """Version ``version``."""
    return await session.get(IndexSystem, version)


async def all_versions(session: AsyncSession) -> list[IndexSystem]:
    """Every stored version, oldest first."""
    return list(
        (await session.execute(select(IndexSystem).order_by(IndexSystem.version))).scalars()
    )


async def next_version(session: AsyncSession) -> int:
    """The number the next version gets."""
    return await latest_version(session) + 1


async def insert(session: AsyncSession, system: IndexSystem) -> IndexSystem:
    """Store a new version (the primary key refuses a concurrent twin)."""
    session.add(system)
    await session.flush()
    return system


def _stored_read() -> Select[Any]:
    latest = select(func.coalesce(func.max(IndexSystem.version), 0)).scalar_subquery()
    return select(RANKINGS.c.body).where(
        RANKINGS.c.scope_kind == bindparam("scope_kind", type_=String),
        RANKINGS.c.level == bindparam("level", type_=String),
        RANKINGS.c.period_start == bindparam("period_start", type_=Date),
        RANKINGS.c.period_end == bindparam("period_end", type_=Date),
        # The version asked for, or (NULL) the newest stored one, 0 without any.
        RANKINGS.c.system_version
        == func.coalesce(bindparam("system_version", type_=Integer), latest),
    )


# A ranking read is this one indexed read when the ranking is stored: straight on a pooled
# connection, since a session and a built statement cost more than SQLite takes to answer it.
_STORED_READ = DirectRead(_stored_read())


async def stored_ranking(
    engine: AsyncEngine,
    *,
    scope_kind: str,
    level: str,
    period_start: date,
    period_end: date,
    system_version: int | None,
) -> str | None:
    """The stored ranking's JSON, if there is one; ``system_version`` None: the newest
    version's. Read in one query outside any unit of work."""
    # Without SQLAlchemy's type processing: SQLite stores days as ISO text.
    as_day: Any = date.isoformat if engine.dialect.name == "sqlite" else (lambda day: day)
    rows = await _STORED_READ.rows(
        engine,
        {"scope_kind": scope_kind, "level": level, "period_start": as_day(period_start),
         "period_end": as_day(period_end), "system_version": system_version},
    )  # fmt: skip
    return str(rows[0][0]) if rows else None


async def store_ranking(
    session: AsyncSession, key: RankingKey, *, body: str, generation: int, keep: int
) -> bool:
    """Store a ranking computed from ``generation`` if that is still the generation now.

    One statement, ``INSERT ... SELECT ... FROM the generation row WHERE generation = g``: on
    SQLite it runs holding the write lock, so no projection commits between the check and the
    insert; on PostgreSQL the generation row is read ``FOR SHARE``, so a projection that has
    advanced it and not committed is waited for (and then the check fails), and one that
    advances it after this waits for this transaction, then deletes the row if its days
    changed. Keeps the ``keep`` newest rows. Returns whether it was stored.
    """
    values: dict[str, Any] = {
        **key._asdict(), "generation": generation, "computed_at": utcnow(), "body": body,
    }  # fmt: skip
    guard = select(
        *(literal(value, RANKINGS.c[name].type) for name, value in values.items())
    ).where(GENERATION.c.id == 1, GENERATION.c.generation == generation)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        guard = guard.with_for_update(read=True)
    insert = dialect_insert("postgresql" if postgres else "sqlite")
    statement = (
        insert(RANKINGS)
        .from_select(list(values), guard)
        .on_conflict_do_nothing(index_elements=list(KEY))
    )
    result = await session.execute(statement)
    stored = bool(getattr(result, "rowcount", 0))
    if stored:
        newest = select(RANKINGS.c.id).order_by(RANKINGS.c.id.desc()).limit(keep)
        await session.execute(
            delete(RANKINGS).where(RANKINGS.c.id.not_in(newest.scalar_subquery()))
        )
    return stored


async def forget_rankings(session: AsyncSession, days: Sequence[date] | None) -> None:
    """Delete the stored rankings whose period holds one of ``days`` (every one: ``None``)."""
    statement = delete(RANKINGS)
    if days is not None:
        if not days:
            return
        # Consecutive days as one range: a batch usually touches a few runs of days.
        runs: list[tuple[date, date]] = []
        for day in sorted(set(days)):
            if runs and day - runs[-1][1] == timedelta(days=1):
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
        statement = statement.where(
            or_(*(and_(RANKINGS.c.period_start <= last, RANKINGS.c.period_end >= first)
                  for first, last in runs))
        )  # fmt: skip
    await session.execute(statement)

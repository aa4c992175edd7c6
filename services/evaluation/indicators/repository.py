"""Every query of the daily indicator rows and the processing-time histogram, and the replay's
clearing of what the projection derives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, Table, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events.tables import TABLES
from services.evaluation.indicators.counters import COUNTERS
from services.evaluation.indicators.models import (
    daily_indicators,
    indicator_generation,
    processing_histogram,
)
from services.evaluation.upserts import upsert

Sums = dict[str, int]
D = daily_indicators.c
H = processing_histogram.c


def _in_period(query: Select[Any], kind: str, ids: Sequence[str] | None, start: date, end: date,
               table: Any) -> Select[Any]:  # fmt: skip
    query = query.where(table.c.scope_kind == kind, table.c.day >= start, table.c.day <= end)
    if ids is not None:
        query = query.where(table.c.scope_id.in_(list(ids)))
    return query


async def sums_by_scope(
    session: AsyncSession, *, kind: str, ids: Sequence[str] | None, start: date, end: date
) -> dict[str, Sums]:
    """Each scope's counters summed over the days from ``start`` to ``end``."""
    query = select(D.scope_id, *(func.sum(D[name]) for name in COUNTERS)).group_by(D.scope_id)
    rows = await session.execute(_in_period(query, kind, ids, start, end, daily_indicators))
    return {
        row[0]: dict(zip(COUNTERS, (int(v or 0) for v in row[1:]), strict=True)) for row in rows
    }


async def sums_by_day(
    session: AsyncSession, *, kind: str, ids: Sequence[str], start: date, end: date
) -> dict[date, Sums]:
    """The scopes' counters summed per day."""
    query = select(D.day, *(func.sum(D[name]) for name in COUNTERS)).group_by(D.day)
    rows = await session.execute(_in_period(query, kind, ids, start, end, daily_indicators))
    return {
        _day(row[0]): dict(zip(COUNTERS, (int(v or 0) for v in row[1:]), strict=True))
        for row in rows
    }


async def histograms_by_scope(
    session: AsyncSession, *, kind: str, ids: Sequence[str] | None, start: date, end: date
) -> dict[str, dict[int, int]]:
    """Each scope's processing-time histogram {working days: applications} over the period."""
    query = select(H.scope_id, H.working_days, func.sum(H.applications)).group_by(
        H.scope_id, H.working_days
    )
    rows = await session.execute(_in_period(query, kind, ids, start, end, processing_histogram))
    found: dict[str, dict[int, int]] = {}
    for scope_id, working_days, count in rows:
        if count:
            found.setdefault(scope_id, {})[int(working_days)] = int(count)
    return found


async def histograms_by_day(
    session: AsyncSession, *, kind: str, scope_id: str, start: date, end: date
) -> dict[date, dict[int, int]]:
    """One scope's histogram per day."""
    query = select(H.day, H.working_days, H.applications)
    rows = await session.execute(
        _in_period(query, kind, [scope_id], start, end, processing_histogram)
    )
    found: dict[date, dict[int, int]] = {}
    for day, working_days, count in rows:
        if count:
            found.setdefault(_day(day), {})[int(working_days)] = int(count)
    return found


async def stream_rows(
    session: AsyncSession, *, kind: str, ids: Sequence[str] | None, start: date, end: date
) -> AsyncIterator[tuple[str, date, Sums]]:
    """Daily rows ordered by scope and day, read as a stream (for exports)."""
    query = select(D.scope_id, D.day, *(D[name] for name in COUNTERS)).order_by(D.scope_id, D.day)
    result = await session.stream(_in_period(query, kind, ids, start, end, daily_indicators))
    async for row in result:
        yield row[0], _day(row[1]), dict(zip(COUNTERS, (int(v) for v in row[2:]), strict=True))


async def all_rows(session: AsyncSession) -> list[tuple[Any, ...]]:
    """Every daily row and histogram row that is not all zeros, in key order (to compare)."""
    daily = await session.execute(
        select(daily_indicators).order_by(D.scope_kind, D.scope_id, D.day)
    )
    rows: list[tuple[Any, ...]] = [("daily", *r) for r in daily if any(r[3:])]
    histogram = await session.execute(
        select(processing_histogram).order_by(H.scope_kind, H.scope_id, H.day, H.working_days)
    )
    rows += [("histogram", *r) for r in histogram if r[-1]]
    return [tuple(_day(v) if isinstance(v, date) else v for v in row) for row in rows]


async def generation(session: AsyncSession) -> int | None:
    """The indicators' generation now (None if its row is missing)."""
    found = await session.execute(
        select(indicator_generation.c.generation).where(indicator_generation.c.id == 1)
    )
    value = found.scalar_one_or_none()
    return None if value is None else int(value)


async def advance_generation(session: AsyncSession) -> None:
    """Increment the generation (in the transaction that changes the indicators)."""
    await upsert(
        session, indicator_generation, [{"id": 1, "generation": 1}], keys=["id"],
        add=["generation"],
    )  # fmt: skip


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def clear(session: AsyncSession, tables: Sequence[Table], consumers: Sequence[str]) -> None:
    """Delete every row of ``tables`` and what the inbox holds for ``consumers``."""
    for table in tables:
        await session.execute(delete(table))
    await session.execute(delete(TABLES.inbox).where(TABLES.inbox.c.consumer.in_(consumers)))


async def widen_page_cache(session: AsyncSession, kib: int) -> None:
    """On SQLite, give this session's connection a page cache of ``kib`` KiB."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text(f"PRAGMA cache_size=-{int(kib)}"))

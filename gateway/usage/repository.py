"""Every query on daily usage."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.usage.models import DailyUsage
from libs.common.database import dialect_insert

# (key id, application id, day) -> (calls, errors, rejected)
UsageDeltas = Mapping[tuple[str, str, date], tuple[int, int, int]]


async def add_counts(session: AsyncSession, deltas: UsageDeltas) -> None:
    """Add each replica's counts to the day's row (made if missing), atomically per row."""
    if not deltas:
        return
    insert = dialect_insert(session.bind.dialect.name)
    rows = [
        {
            "key_id": key_id,
            "application_id": application_id,
            "day": day,
            "calls": calls,
            "errors": errors,
            "rejected": rejected,
        }
        for (key_id, application_id, day), (calls, errors, rejected) in sorted(deltas.items())
    ]
    statement = insert(DailyUsage).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[DailyUsage.key_id, DailyUsage.day],
        set_={
            "calls": DailyUsage.calls + statement.excluded.calls,
            "errors": DailyUsage.errors + statement.excluded.errors,
            "rejected": DailyUsage.rejected + statement.excluded.rejected,
        },
    )
    await session.execute(statement)


async def of_application(
    session: AsyncSession, application_id: str, *, since: date
) -> list[DailyUsage]:
    """The application's rows from ``since`` on, by day then key."""
    result = await session.execute(
        select(DailyUsage)
        .where(DailyUsage.application_id == application_id, DailyUsage.day >= since)
        .order_by(DailyUsage.day, DailyUsage.key_id)
    )
    return list(result.scalars())

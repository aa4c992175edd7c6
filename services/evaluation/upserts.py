"""INSERT ... ON CONFLICT for both backends: replace a row, or add to its counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    add: Sequence[str] = (),
) -> None:
    """Insert ``rows``; on a key conflict, add the ``add`` columns and replace the others."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    excluded = statement.excluded
    values: dict[str, Any] = {}
    for name in rows[0]:
        if name in keys:
            continue
        values[name] = table.c[name] + excluded[name] if name in add else excluded[name]
    if values:
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=values)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    await session.execute(statement, list(rows))

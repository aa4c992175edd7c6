"""New rows written with one multi-row INSERT per table, not through the ORM's unit of work.

A submission writes an application, its materials, branches, tasks, clocks and history at once;
the ORM would flush them object by object with its bookkeeping. These rows are built in memory,
answered from memory, and inserted with SQLAlchemy Core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession

from services.workflow.base import Base


def values_of(row: Base) -> dict[str, Any]:
    """A new row's column values; the columns' Python defaults are applied to it as well."""
    state: dict[str, Any] = row.__dict__
    values: dict[str, Any] = {}
    for column in inspect(type(row)).columns:
        key = column.key
        if key in state:
            values[key] = state[key]
            continue
        default = column.default
        if default is None or not hasattr(default, "arg"):
            if column.autoincrement is True:
                continue  # the database numbers it
            value = None
        else:
            value = default.arg(None) if default.is_callable else default.arg
        setattr(row, key, value)
        values[key] = value
    return values


async def insert_new(session: AsyncSession, rows: Sequence[Base]) -> None:
    """Insert new rows of one model in one statement (they stay out of the session)."""
    if not rows:
        return
    table = cast(Table, type(rows[0]).__table__)
    await session.execute(insert(table), [values_of(row) for row in rows])


async def insert_numbered(session: AsyncSession, rows: Sequence[Base]) -> None:
    """Insert new rows whose ``id`` the database numbers, and set each row's ``id``, in order."""
    if not rows:
        return
    table = cast(Table, type(rows[0]).__table__)
    values = [values_of(row) for row in rows]
    for value in values:
        value.pop("id", None)
    result = await session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), values
    )
    for row, number in zip(rows, result.scalars(), strict=True):
        row.id = number  # type: ignore[attr-defined]

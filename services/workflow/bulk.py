"""New rows written with one multi-row INSERT per table, not through the ORM's unit of work.

A submission writes an application, its materials, branches, tasks, clocks and history at once;
the ORM would flush them object by object with its bookkeeping. These rows are built in memory,
answered from memory, and inserted with SQLAlchemy Core.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Column, Insert, Table, TextClause, bindparam, insert, inspect, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TextualSelect

from services.workflow.base import Base

_SQLITE = sqlite.dialect(paramstyle="named")


@dataclass(frozen=True, slots=True)
class _Column:
    key: str
    numbered: bool  # the database numbers it (an autoincrement key)
    default: Callable[[Any], Any] | None  # the column's Python default, called
    value: Any  # or its constant default


@functools.cache
def _columns(model: type[Base]) -> tuple[_Column, ...]:
    """A model's columns and their Python defaults, looked up once per model."""
    found = []
    for column in inspect(model).columns:
        default = column.default
        if default is None or not hasattr(default, "arg"):
            found.append(_Column(column.key, column.autoincrement is True, None, None))
        elif default.is_callable:
            found.append(_Column(column.key, False, default.arg, None))
        else:
            found.append(_Column(column.key, False, None, default.arg))
    return tuple(found)


def values_of(row: Base) -> dict[str, Any]:
    """A new row's column values; the columns' Python defaults are applied to it as well."""
    state: dict[str, Any] = row.__dict__
    values: dict[str, Any] = {}
    for column in _columns(type(row)):
        key = column.key
        if key in state:
            values[key] = state[key]
            continue
        if column.default is None and column.numbered:
            continue  # the database numbers it
        value = column.default(None) if column.default is not None else column.value
        setattr(row, key, value)
        values[key] = value
    return values


@functools.cache
def _insert(model: type[Base]) -> Insert:
    """A model's INSERT, built once: SQLAlchemy caches a statement's compiled form by its cache
    key, which it computes once per statement object (building both per call cost more)."""
    return insert(cast(Table, model.__table__))


@functools.cache
def _insert_numbered(model: type[Base]) -> Insert:
    """A model's INSERT ... RETURNING id, built once."""
    table = cast(Table, model.__table__)
    return insert(table).returning(table.c.id)


async def insert_new(session: AsyncSession, rows: Sequence[Base]) -> None:
    """Insert new rows of one model in one statement (they stay out of the session)."""
    if not rows:
        return
    await session.execute(_insert(type(rows[0])), [values_of(row) for row in rows])


async def insert_numbered(session: AsyncSession, rows: Sequence[Base]) -> None:
    """Insert new rows whose ``id`` the database numbers, and set each row's ``id``, in order."""
    if not rows:
        return
    table = cast(Table, type(rows[0]).__table__)
    values = [values_of(row) for row in rows]
    for value in values:
        value.pop("id", None)
    if session.get_bind().dialect.name == "sqlite":
        # One multi-row INSERT ... RETURNING instead of one statement per row (what SQLAlchemy
        # does on SQLite to return ids in parameter order). SQLite numbers the rows of one
        # statement in the order they are inserted, each one above the table's largest id,
        # under the write lock the transaction holds: the ids, sorted, are the rows' in order.
        result = await session.execute(_insert_numbered(type(rows[0])), values)
        numbers = sorted(result.scalars())
    else:
        result = await session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), values
        )
        numbers = list(result.scalars())
    for row, number in zip(rows, numbers, strict=True):
        row.id = number  # type: ignore[attr-defined]


def sqlite_cached(
    statement: Insert, *, column_keys: Sequence[str], returning: Sequence[Column[Any]] = ()
) -> TextClause | TextualSelect:
    """``statement`` (an SQLite ``INSERT ... ON CONFLICT``) as a statement SQLAlchemy caches.

    SQLAlchemy 2.0 never caches SQLite's ``Insert`` (``inherit_cache = False``: its ON CONFLICT
    clause is not part of the cache key), so each execution compiled it afresh: about as much
    CPU as the rest of the INSERT. Compiled once here, with named parameters typed as the
    columns' (JSON, times, ...) and the statement's own literals bound to their values, it runs
    as a textual statement, which is cached by its text. The rows must give ``column_keys``.
    """
    compiled = statement.compile(dialect=_SQLITE, column_keys=list(column_keys))
    params = compiled.params
    binds = {
        name: bindparam(name, type_=bind.type)
        if bind.required
        else bindparam(name, value=params[name], type_=bind.type)
        for bind, name in compiled.bind_names.items()
    }
    clause = text(compiled.string).bindparams(*binds.values())
    return clause.columns(*returning) if returning else clause

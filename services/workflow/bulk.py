"""New rows written straight to the driver, not through the ORM's unit of work.

A submission writes an application, its materials, branches, tasks, clocks and history at once;
the ORM would flush them object by object with its bookkeeping. These rows are built in memory,
answered from memory, and inserted with prebuilt statements (``DirectWrite``: compiled once per
dialect, no cache key, execution context or result per call), all of a step's in one greenlet
trip (``run``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Column, Insert, Table, TextClause, bindparam, insert, inspect, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect

from libs.common.database import DirectWrite
from services.workflow.base import Base

_SQLITE = sqlite.dialect(paramstyle="named")
T = TypeVar("T")
M = TypeVar("M", bound=Base)


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


def new_row(model: type[M], **values: Any) -> M:
    """A new row of ``model`` holding ``values``, made without the mapped constructor.

    The declarative constructor sets each value through the ORM's instrumented attribute (its
    events and history): ≈ 60 µs for a task, about a sixth of a bundle submission's CPU for its
    twenty rows. These rows are inserted by this module (or added to a session, whose flush
    reads their values just as well), so the values go straight into the instance's dict; the
    instance has its ORM state, so later changes to it are tracked as usual.
    """
    row: M = model.__mapper__.class_manager.new_instance()
    row.__dict__.update(values)
    return row


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
        state[key] = value  # a new row's: nothing to track
        values[key] = value
    return values


async def run(session: AsyncSession, write: Callable[[Connection], T]) -> T:
    """Run ``write`` with the session's connection, in its transaction (begun if it was not),
    in one greenlet trip: a step's direct writes cost one trip, not one per statement."""

    def on_connection(sync_session: Session) -> T:
        return write(sync_session.connection())

    return await session.run_sync(on_connection)


@functools.cache
def _insert(model: type[Base]) -> DirectWrite:
    """A model's INSERT of every column ``values_of`` gives, built once."""
    keys = [c.key for c in _columns(model) if not c.numbered or c.default is not None]
    return DirectWrite(insert(cast(Table, model.__table__)), column_keys=keys)


@functools.cache
def _insert_numbered(model: type[Base]) -> DirectWrite:
    """A model's INSERT ... RETURNING id of one row, the database numbering ``id``."""
    table = cast(Table, model.__table__)
    keys = [c.key for c in _columns(model) if c.key != "id"]
    return DirectWrite(insert(table).returning(table.c.id), column_keys=keys)


def insert_new(connection: Connection, rows: Sequence[Base]) -> None:
    """Insert new rows of one model (they stay out of the session): one ``executemany``."""
    if not rows:
        return
    _insert(type(rows[0])).execute_many(connection, [values_of(row) for row in rows])


def insert_numbered(connection: Connection, rows: Sequence[Base]) -> None:
    """Insert new rows whose ``id`` the database numbers, and set each row's ``id``.

    One statement per row, each returning its own number: exact on every backend, with no
    assumption on the order of a multi-row RETURNING.
    """
    if not rows:
        return
    statement = _insert_numbered(type(rows[0]))
    for row in rows:
        values = values_of(row)
        values.pop("id", None)
        ((number,),) = statement.execute(connection, values)
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

"""INSERT ... ON CONFLICT for both backends: replace a row, or add to its counters.

The statement is written as text, once per shape (table, columns, keys, added columns), and
kept: SQLAlchemy does not cache the compiled form of its dialects' ``insert().on_conflict_*``
constructs, so building one per call compiled it again on every batch (about 1.5 ms each, five
per projection batch). The text is the same on SQLite and PostgreSQL (``ON CONFLICT (keys) DO
UPDATE SET c = table.c + excluded.c``).

The rows go to the driver's own ``executemany`` (``exec_driver_sql``) with each value converted
by its column type's bind processor for the dialect, exactly what SQLAlchemy would apply (JSON,
dates, times, booleans): its generic per-row parameter handling cost more than SQLite's own
work on these narrow rows. A driver with named parameters takes the ordinary path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Table, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

# Shapes kept; the projection uses a few dozen (one per table and set of non-zero counters).
STATEMENTS_KEPT = 512


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=STATEMENTS_KEPT)
def upsert_statement(
    table: Table, columns: tuple[str, ...], keys: tuple[str, ...], add: frozenset[str]
) -> TextClause:
    """The upsert of rows with exactly ``columns`` into ``table``."""
    name = _quoted(table.name)
    updates = [
        f"{_quoted(c)} = {name}.{_quoted(c)} + excluded.{_quoted(c)}"
        if c in add
        else f"{_quoted(c)} = excluded.{_quoted(c)}"
        for c in columns
        if c not in keys
    ]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    sql = (
        f"INSERT INTO {name} ({', '.join(_quoted(c) for c in columns)}) "
        f"VALUES ({', '.join(f':{c}' for c in columns)}) "
        f"ON CONFLICT ({', '.join(_quoted(k) for k in keys)}) {action}"
    )
    return text(sql).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


@dataclass(frozen=True)
class Positional:
    """A statement in a driver's positional form, and how to turn rows into its parameters."""

    sql: str
    # The row's values in the statement's order.
    values: Callable[[Mapping[str, Any]], Any]
    # (position, converter) of the values SQLAlchemy would convert (JSON, dates, times, ...).
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Each row's parameters, converted."""
        values, converters = self.values, self.converters
        if not converters:
            return [values(row) for row in rows]
        converted = []
        for row in rows:
            parameters = list(values(row))
            for position, convert in converters:
                parameters[position] = convert(parameters[position])
            converted.append(tuple(parameters))
        return converted


@lru_cache(maxsize=STATEMENTS_KEPT)
def positional_statement(
    statement: TextClause, table: Table, dialect: Dialect
) -> Positional | None:
    """``statement``'s SQL for ``dialect`` and its parameters' order and converters; None for
    a driver with named parameters."""
    compiled = statement.compile(dialect=dialect)
    order: Sequence[str] | None = getattr(compiled, "positiontup", None)
    if not order:
        return None
    converters = (
        (position, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for position, name in enumerate(order)
    )
    getter = itemgetter(*order)
    return Positional(
        sql=compiled.string,
        values=getter if len(order) > 1 else lambda row: (getter(row),),
        converters=tuple((p, c) for p, c in converters if c is not None),
    )


async def upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    add: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (all with the same columns); on a key conflict, add the ``add`` columns
    and replace the others."""
    if not rows:
        return
    statement = upsert_statement(table, tuple(rows[0]), tuple(keys), frozenset(add))
    connection = await session.connection()
    positional = positional_statement(statement, table, connection.dialect)
    if positional is None:
        await session.execute(statement, list(rows))
        return
    await connection.exec_driver_sql(positional.sql, positional.parameters(rows))

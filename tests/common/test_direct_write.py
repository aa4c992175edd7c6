"""DirectWrite: a prebuilt write on a transaction's driver cursor, on both backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Connection, Integer, String, TypeDecorator, bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.database import Database, DirectWrite, new_metadata


class Tags(TypeDecorator[tuple[str, ...]]):
    """Stored as a JSON array: the bind processor must run on the direct path too."""

    impl = String(200)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[str, ...] | None:
        return None if value is None else tuple(json.loads(value))


class Base(DeclarativeBase):
    metadata = new_metadata()


class Item(Base):
    __tablename__ = "direct_write_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50))
    tags: Mapped[tuple[str, ...]] = mapped_column(Tags)
    count: Mapped[int] = mapped_column(Integer, default=0)


_items = Item.__table__
INSERT = DirectWrite(insert(_items), column_keys=["id", "name", "tags", "count"])
# A literal in the statement (the WHERE's 1) is bound too, as SQLAlchemy would bind it.
RENAME_FIRST = DirectWrite(
    update(_items)
    .where(_items.c.id == 1)
    .values(name=bindparam("b_name"), tags=bindparam("b_tags"))
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    try:
        yield database
    finally:
        async with database.engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
        await database.dispose()


def _write(connection: Connection) -> None:
    # The transaction's first write through SQLAlchemy (it takes SQLite's write lock), then
    # the direct ones.
    connection.execute(insert(_items).values(id=0, name="first", tags=("x",), count=0))
    INSERT.execute_many(
        connection,
        [
            {"id": 1, "name": "a", "tags": ("red", "blue"), "count": 1},
            {"id": 2, "name": "b", "tags": (), "count": 2},
        ],
    )
    RENAME_FIRST.execute(connection, {"b_name": "renamed", "b_tags": ("green",)})


async def test_rows_are_written_through_the_column_types(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(_write)
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(Item).order_by(Item.id))).scalars().all()
        stored = {
            row[0]: row[1]
            for row in (await session.execute(select(_items.c.id, _items.c.tags.cast(String))))
        }
    assert [(i.id, i.name, i.tags, i.count) for i in rows] == [
        (0, "first", ("x",), 0),
        (1, "renamed", ("green",), 1),
        (2, "b", (), 2),
    ]
    assert stored[2] == "[]"  # the bind processor's text, not Python's repr of a tuple


async def test_a_rolled_back_transaction_keeps_none_of_the_direct_writes(
    database: Database,
) -> None:
    with pytest.raises(RuntimeError, match="stop"):
        async with database.engine.begin() as connection:
            await connection.run_sync(_write)
            raise RuntimeError("stop")
    async with database.sessionmaker() as session:
        assert (await session.execute(select(Item))).scalars().all() == []


async def test_a_direct_write_first_in_a_transaction_takes_the_write_turn(
    database: Database,
) -> None:
    order: list[str] = []

    async def second_writer() -> None:
        async with database.engine.begin() as other:
            await other.execute(insert(_items).values(id=2, name="b", tags=(), count=0))
        order.append("second committed")

    async with database.engine.begin() as first:
        # The transaction's first write, straight to the driver: on SQLite it must take the
        # file's write turn and lock as a statement through SQLAlchemy would.
        await first.run_sync(
            lambda sync: INSERT.execute(sync, {"id": 1, "name": "a", "tags": (), "count": 0})
        )
        second = asyncio.create_task(second_writer())
        await asyncio.sleep(0.2)
        order.append("first commits")
    await second
    if database.engine.dialect.name == "sqlite":
        assert order == ["first commits", "second committed"]  # it waited its turn
    else:
        assert order == ["second committed", "first commits"]  # row locks only
    async with database.sessionmaker() as session:
        assert (await session.execute(select(Item.id).order_by(Item.id))).scalars().all() == [1, 2]


async def test_a_direct_write_outside_a_transaction_is_refused(database: Database) -> None:
    async with database.engine.connect() as connection:
        with pytest.raises(RuntimeError, match="inside a transaction"):
            await connection.run_sync(
                lambda sync: INSERT.execute(sync, {"id": 9, "name": "z", "tags": (), "count": 0})
            )


async def test_returning_rows_come_as_the_driver_gives_them(database: Database) -> None:
    renumber = DirectWrite(
        update(_items)
        .where(_items.c.id == bindparam("b_id"))
        .values(count=_items.c.count + 1)
        .returning(_items.c.id, _items.c.count, _items.c.tags)
    )
    async with database.engine.begin() as connection:
        await connection.run_sync(_write)
        rows = await connection.run_sync(lambda sync: renumber.execute(sync, {"b_id": 1}))
    assert [tuple(row) for row in rows] == [(1, 2, '["green"]')]


async def test_a_defaulted_column_left_out_is_refused(database: Database) -> None:
    partial = DirectWrite(insert(_items), column_keys=["id", "name", "tags"])  # count defaults
    async with database.engine.connect() as connection:
        with pytest.raises(TypeError, match="defaulted column"):
            await connection.run_sync(partial._prepared)


async def test_stored_rows_go_in_as_given_in_the_statement_order(database: Database) -> None:
    stored = DirectWrite(
        insert(_items),
        column_keys=["id", "name", "tags", "count"],
        stored_order=("id", "name", "tags", "count"),
    )
    misordered = DirectWrite(
        insert(_items),
        column_keys=["id", "name", "tags", "count"],
        stored_order=("name", "id", "tags", "count"),
    )

    def write(connection: Connection) -> None:
        # The tags as stored already: no bind processor runs on them.
        stored.execute_many_stored(connection, [(5, "e", '["as","given"]', 3)])
        with pytest.raises(TypeError, match="parameters"):
            misordered.execute_many_stored(connection, [("f", 6, "[]", 0)])

    async with database.engine.begin() as connection:
        await connection.run_sync(write)
    async with database.sessionmaker() as session:
        [item] = (await session.execute(select(Item))).scalars().all()
    assert (item.id, item.name, item.tags, item.count) == (5, "e", ("as", "given"), 3)

"""SQLite under concurrent writers: one write transaction at a time per file, in arrival order,
and readers beside it (libs.common.database.SQLiteWriters)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import String, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.database import Database, SessionDep, create_engine, new_metadata
from tests.common.conftest import build_app


class Base(DeclarativeBase):
    metadata = new_metadata()


class Counter(Base):
    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[int]


class Entry(Base):
    __tablename__ = "entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))


router = APIRouter(prefix="/v1")
HOLD_S = 0.08
writer_inside = asyncio.Event()
release_writer = asyncio.Event()


@router.post("/entries/{title}", status_code=201)
async def add_entry(title: str, session: SessionDep) -> dict[str, str]:
    # Read, write, then keep the transaction open across an await (another service, a hash...).
    await session.scalar(select(Counter.value).where(Counter.name == "entries"))
    session.add(Entry(title=title))
    await session.execute(text("UPDATE counter SET value = value + 1 WHERE name = 'entries'"))
    await asyncio.sleep(HOLD_S)
    return {"title": title}


@router.post("/slow-entry", status_code=201)
async def add_entry_slowly(session: SessionDep) -> dict[str, str]:
    session.add(Entry(title="slow"))
    await session.flush()
    writer_inside.set()
    await release_writer.wait()
    return {"title": "slow"}


@router.get("/entries/count")
async def count_entries(session: SessionDep) -> dict[str, int]:
    return {"count": int(await session.scalar(select(func.count()).select_from(Entry)) or 0)}


@pytest.fixture
async def sqlite_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}"
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(text("INSERT INTO counter (name, value) VALUES ('entries', 0)"))
    await engine.dispose()
    app = build_app(routers=[router], database_url=url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://sample", timeout=60
        ) as client,
    ):
        yield client


async def test_64_concurrent_write_requests_all_commit(sqlite_client: httpx.AsyncClient) -> None:
    # 64 transactions holding the write lock 80 ms each queue for about 5 s: past SQLite's busy
    # timeout for the last of them when they wait in SQLite's busy handler.
    responses = await asyncio.gather(*(sqlite_client.post(f"/v1/entries/e{i}") for i in range(64)))
    assert [r.status_code for r in responses] == [201] * 64, [
        r.text for r in responses if r.status_code != 201
    ]
    assert (await sqlite_client.get("/v1/entries/count")).json() == {"count": 64}


async def test_reads_are_not_queued_behind_a_long_write(sqlite_client: httpx.AsyncClient) -> None:
    writer_inside.clear()
    release_writer.clear()
    writer = asyncio.create_task(sqlite_client.post("/v1/slow-entry"))
    await asyncio.wait_for(writer_inside.wait(), 5)
    started = time.monotonic()
    reads = await asyncio.gather(*(sqlite_client.get("/v1/entries/count") for _ in range(20)))
    took = time.monotonic() - started
    # The readers see the last committed state while the write transaction is still open.
    assert [r.json() for r in reads] == [{"count": 0}] * 20
    assert took < 2, took
    assert not writer.done()
    release_writer.set()
    assert (await writer).status_code == 201
    assert (await sqlite_client.get("/v1/entries/count")).json() == {"count": 1}


async def test_the_counter_is_exact_under_concurrent_read_modify_write(tmp_path: Path) -> None:
    # A transaction that reads before it writes never fails on a stale snapshot: its first write
    # begins IMMEDIATE, after the previous writer committed.
    url = f"sqlite+aiosqlite:///{tmp_path / 'rmw.db'}"
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
            await connection.execute(text("INSERT INTO counter (name, value) VALUES ('n', 0)"))

        async def increment() -> None:
            async with database.sessionmaker() as session:
                await session.execute(text("UPDATE counter SET value = value + 1 WHERE name='n'"))
                value = await session.scalar(select(Counter.value).where(Counter.name == "n"))
                await asyncio.sleep(0)
                session.add(Entry(title=f"after-{value}"))
                await session.commit()

        await asyncio.gather(*(increment() for _ in range(50)))
        async with database.sessionmaker() as session:
            assert await session.scalar(select(Counter.value)) == 50
            titles = set((await session.scalars(select(Entry.title))).all())
        # Every transaction saw its own increment on top of all earlier ones: 1..50, no repeats.
        assert titles == {f"after-{n}" for n in range(1, 51)}
    finally:
        await database.dispose()


async def test_a_failed_write_hands_the_turn_on(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fail.db'}"
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        with pytest.raises(Exception, match="UNIQUE"):
            async with database.sessionmaker() as session:
                session.add_all([Entry(id=1, title="a"), Entry(id=1, title="b")])
                await session.commit()
        async with database.sessionmaker() as session:
            session.add(Entry(id=2, title="c"))
            await asyncio.wait_for(session.commit(), 2)
        async with database.sessionmaker() as session:
            assert (await session.scalars(select(Entry.title))).all() == ["c"]
    finally:
        await database.dispose()


async def test_a_savepoint_rolls_back_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested.db'}"
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with database.sessionmaker() as session:
            session.add(Entry(id=1, title="kept"))
            await session.flush()
            nested = await session.begin_nested()
            session.add(Entry(id=2, title="dropped"))
            await session.flush()
            await nested.rollback()
            await session.commit()
        async with database.sessionmaker() as session:
            assert (await session.scalars(select(Entry.title))).all() == ["kept"]
    finally:
        await database.dispose()

"""Overload is a 503 problem with Retry-After, not a 500: pool, SQLite write queue and lock."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import String, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common import database
from libs.common.database import SessionDep, new_metadata
from libs.common.errors import OVERLOAD_RETRY_AFTER_S, is_overload
from tests.common.conftest import sample_client
from tests.common.test_errors import assert_problem


class Base(DeclarativeBase):
    metadata = new_metadata()


class Counter(Base):
    __tablename__ = "counter"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    hits: Mapped[int]


class Gate:
    """Lets a test hold requests inside their transaction until it opens."""

    def __init__(self) -> None:
        self.holding = 0
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def hold(self) -> None:
        self.holding += 1
        self.entered.set()
        await self.opened.wait()


gate = Gate()
router = APIRouter(prefix="/v1")


@router.get("/hold-read")
async def hold_read(session: SessionDep) -> dict[str, int]:
    hits = await session.scalar(select(Counter.hits).where(Counter.id == 1))
    await gate.hold()  # the connection stays checked out
    return {"hits": int(hits or 0)}


@router.get("/read")
async def read(session: SessionDep) -> dict[str, int]:
    return {"hits": int(await session.scalar(select(Counter.hits).where(Counter.id == 1)) or 0)}


@router.post("/hold-write")
async def hold_write(session: SessionDep) -> dict[str, str]:
    await session.execute(update(Counter).where(Counter.id == 1).values(hits=Counter.hits + 1))
    await gate.hold()  # SQLite: this process's write turn stays taken
    return {"done": "yes"}


@router.post("/write")
async def write(session: SessionDep) -> dict[str, str]:
    await session.execute(update(Counter).where(Counter.id == 1).values(hits=Counter.hits + 1))
    return {"done": "yes"}


@router.get("/broken")
async def broken(session: SessionDep) -> None:
    await session.execute(text("SELECT * FROM no_such_table"))


async def _fill(connection: AsyncConnection) -> None:
    await connection.execute(text("INSERT INTO counter (id, name, hits) VALUES (1, 'one', 0)"))


@pytest.fixture(autouse=True)
def _fresh_gate() -> None:
    global gate
    gate = Gate()


@pytest.fixture
def small_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two connections per engine on either backend, and a short wait for one."""
    monkeypatch.setattr(database, "SQLITE_POOL_SIZE", 1)  # 1 + 1 overflow
    monkeypatch.setattr(database, "POSTGRES_POOL_SIZE", 1)
    monkeypatch.setattr(database, "POSTGRES_MAX_OVERFLOW", 1)
    monkeypatch.setattr(database, "POOL_TIMEOUT_S", 0.3)


async def _counter(client: httpx.AsyncClient) -> int:
    response = await client.get("/v1/read")
    assert response.status_code == 200, response.text
    hits: int = response.json()["hits"]
    return hits


def _assert_unavailable(response: httpx.Response) -> None:
    body = assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"] == str(OVERLOAD_RETRY_AFTER_S)
    assert "SELECT" not in response.text and "UPDATE" not in response.text
    assert body["detail"]


async def _holding(count: int) -> None:
    async with asyncio.timeout(5):
        while gate.holding < count:
            await asyncio.sleep(0.01)


async def test_a_pool_checkout_that_times_out_is_a_503(
    small_pools: None, database_url: str
) -> None:
    async with sample_client(
        database_url, metadata=Base.metadata, routers=[router], fill=_fill
    ) as client:
        held = [asyncio.create_task(client.get("/v1/hold-read")) for _ in range(2)]
        await _holding(2)
        # Both connections are taken: the next request waits POOL_TIMEOUT_S, then gets a 503.
        _assert_unavailable(await client.get("/v1/read"))
        gate.opened.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        # Nothing was left broken: the pool serves again.
        assert await _counter(client) == 0


async def test_sqlite_write_queue_timeout_is_a_503_and_the_holder_still_commits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(database, "SQLITE_WRITE_QUEUE_TIMEOUT_S", 0.3)
    url = f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}"
    async with sample_client(url, metadata=Base.metadata, routers=[router], fill=_fill) as client:
        held = asyncio.create_task(client.post("/v1/hold-write"))
        await _holding(1)
        # Queued behind this process's writer past SQLITE_WRITE_QUEUE_TIMEOUT_S.
        _assert_unavailable(await client.post("/v1/write"))
        gate.opened.set()
        assert (await held).status_code == 200
        assert (await client.post("/v1/write")).status_code == 200
        assert await _counter(client) == 2  # the held write and the last; not the refused one


async def test_sqlite_locked_by_another_process_past_the_busy_timeout_is_a_503(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "locked.db"
    url = f"sqlite+aiosqlite:///{path}"
    async with sample_client(url, metadata=Base.metadata, routers=[router], fill=_fill) as client:
        # Another writer of the file (SQLite's file lock: any connection outside this engine).
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            _assert_unavailable(await client.post("/v1/write"))
            # Reads go on beside the other writer (WAL).
            assert await _counter(client) == 0
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await client.post("/v1/write")).status_code == 200
        assert await _counter(client) == 1


async def test_other_database_errors_stay_500s(database_url: str) -> None:
    async with sample_client(database_url, metadata=Base.metadata, routers=[router]) as client:
        assert_problem(await client.get("/v1/broken"), 500, "internal-error")


def test_which_database_errors_are_overload() -> None:
    def operational(orig: object) -> OperationalError:
        return OperationalError("SELECT 1", None, orig)  # type: ignore[arg-type]

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5
    assert is_overload(operational(busy))
    assert is_overload(operational(sqlite3.OperationalError("database is locked (queued)")))
    assert is_overload(PoolTimeoutError("QueuePool limit of size 10 overflow 10 reached"))
    assert is_overload(operational(SimpleNamespace(sqlstate="53300")))  # too many connections
    assert is_overload(operational(SimpleNamespace(sqlstate="57P03")))  # cannot connect now
    assert not is_overload(operational(sqlite3.OperationalError("no such table: x")))
    assert not is_overload(operational(SimpleNamespace(sqlstate="42P01")))  # undefined table
    assert not is_overload(RuntimeError("database is locked"))

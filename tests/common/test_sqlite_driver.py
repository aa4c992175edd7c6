"""SQLite statements inline on the event loop, and off it where SQLite may wait
(libs.common.sqlite_driver, used by every SQLite engine of libs.common.database)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common import sqlite_driver
from libs.common.database import SQLITE_BUSY_TIMEOUT_MS, create_engine

# Rows that make a cross join take far longer than the inline budget.
ROWS = 3000
SLOW_COUNT = "SELECT count(*) FROM numbers a, numbers b WHERE a.n + b.n = 2999"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE numbers (n INTEGER PRIMARY KEY)"))
        await connection.execute(
            text("INSERT INTO numbers (n) VALUES (:n)"), [{"n": n} for n in range(ROWS)]
        )
        await connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    sqlite_driver._offloaded.clear()
    yield engine
    await engine.dispose()


class Ticker:
    """Measures the longest time the event loop did not run this task."""

    def __init__(self) -> None:
        self.longest_gap = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            self.longest_gap = max(self.longest_gap, now - last)
            last = now

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


def _count_thread_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    trips: list[str] = []
    original = sqlite_driver._in_thread

    def counting(function):  # type: ignore[no-untyped-def]
        trips.append("trip")
        return original(function)

    monkeypatch.setattr(sqlite_driver, "_in_thread", counting)
    return trips


async def test_short_statements_and_their_transaction_never_leave_the_loop(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = _count_thread_trips(monkeypatch)
    async with engine.begin() as connection:
        total = (await connection.execute(text("SELECT sum(n) FROM numbers"))).scalar_one()
        await connection.execute(text("INSERT INTO notes (body) VALUES ('one')"))
        rows = (await connection.execute(text("SELECT body FROM notes"))).all()
    assert total == sum(range(ROWS))
    assert [r.body for r in rows] == ["one"]
    assert trips == []


async def test_a_read_past_its_budget_finishes_in_a_worker_thread_while_the_loop_runs(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = _count_thread_trips(monkeypatch)
    async with engine.connect() as connection, Ticker() as ticker:
        started = time.perf_counter()
        count = (await connection.execute(text(SLOW_COUNT))).scalar_one()
        took = time.perf_counter() - started
    assert count == ROWS  # every pair (a, 2999 - a)
    assert trips == ["trip"]
    assert took > 10 * sqlite_driver.INLINE_BUDGET_S  # really slow, so the gap below means it
    # The loop ran other tasks meanwhile: held only for the budget (plus scheduling noise).
    assert ticker.longest_gap < took / 2
    # The next run of the same statement goes to the thread at once.
    async with engine.connect() as connection:
        assert (await connection.execute(text(SLOW_COUNT))).scalar_one() == ROWS
    assert trips == ["trip", "trip"]


async def test_a_read_interrupted_inside_a_write_transaction_keeps_the_transaction(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
        assert (await connection.execute(text(SLOW_COUNT))).scalar_one() == ROWS
        await connection.execute(text("INSERT INTO notes (body) VALUES ('also kept')"))
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT body FROM notes ORDER BY id"))).all()
    assert [r.body for r in rows] == ["kept", "also kept"]


async def test_a_write_waits_for_another_process_lock_off_the_loop(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    # Another process's writer (its own connection, outside this process's write queue).
    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO notes (body) VALUES ('other process')")
    # Released by a callback on this loop: the write below can only succeed if the loop runs
    # while it waits for SQLite's lock.
    asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
    started = time.perf_counter()
    async with Ticker() as ticker, engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes (body) VALUES ('ours')"))
    waited = time.perf_counter() - started
    other.close()
    assert waited >= 0.25
    assert ticker.longest_gap < 0.1
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT body FROM notes ORDER BY id"))).all()
    assert [r.body for r in rows] == ["other process", "ours"]


async def test_sql_errors_are_sqlalchemy_errors_and_the_connection_stays_usable(
    engine: AsyncEngine,
) -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    async with engine.connect() as connection:
        with pytest.raises(OperationalError):
            await connection.execute(text("SELECT nope FROM numbers"))
        assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO numbers (n) VALUES (1)"))
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM numbers"))).scalar() == ROWS


async def test_after_a_write_transaction_the_next_statement_waits_for_locks_again(
    engine: AsyncEngine,
) -> None:
    # BEGIN IMMEDIATE is tried without waiting (busy timeout 0, the wait happens off the loop);
    # the timeout must be back before the connection's next statement outside a transaction,
    # or a read during another process's checkpoint would fail at once with "database is locked".
    async with engine.connect() as connection:
        async with connection.begin():
            await connection.execute(text("INSERT INTO notes (id, body) VALUES (1, 'a')"))
            # Inside the write transaction nothing waits for a lock: the timeout stays off.
            assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one() == 0
        waits = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
        assert waits == SQLITE_BUSY_TIMEOUT_MS
        await connection.commit()  # (SQLAlchemy's autobegun transaction of that read)
        async with connection.begin():  # and the next write transaction still begins
            await connection.execute(text("INSERT INTO notes (id, body) VALUES (2, 'b')"))
        assert (await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 2

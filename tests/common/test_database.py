"""The request's unit of work (SessionDep) and the SQLite connection settings, on both backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import String, bindparam, case, event, func, select, text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.database import (
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    DirectRead,
    SessionDep,
    WriteTurn,
    create_engine,
    new_metadata,
)
from libs.common.errors import Conflict
from tests.common.conftest import build_app, sample_client


class Base(DeclarativeBase):
    metadata = new_metadata()


class Note(Base):
    __tablename__ = "note"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100), unique=True)


router = APIRouter(prefix="/v1")


@router.post("/notes/{title}", status_code=201)
async def create_note(title: str, session: SessionDep) -> dict[str, str]:
    session.add(Note(title=title))
    return {"title": title}


@router.post("/notes/{title}/then-fail")
async def create_note_then_fail(title: str, session: SessionDep) -> dict[str, str]:
    session.add(Note(title=title))
    await session.flush()  # the row is written inside the transaction, then the rule fails
    raise Conflict(f"Note {title} clashes with a rule.")


@router.get("/notes/unused-session")
async def unused_session(session: SessionDep) -> dict[str, str]:
    return {"used": "no"}


class TitleQuery(BaseModel):
    title: str


@router.post("/note-searches")
async def find_note(query: TitleQuery, session: SessionDep) -> dict[str, int | None]:
    found = await session.scalar(select(Note.id).where(Note.title == query.title))
    return {"id": found}


@router.get("/notes/count")
async def count_notes(session: SessionDep) -> dict[str, int]:
    return {"count": int(await session.scalar(select(func.count()).select_from(Note)) or 0)}


async def _titles(url: str) -> list[str]:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            return list((await session.scalars(select(Note.title).order_by(Note.id))).all())
    finally:
        await database.dispose()


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with sample_client(database_url, metadata=Base.metadata, routers=[router]) as client:
        yield client


async def test_a_request_that_returns_commits(client: httpx.AsyncClient, database_url: str) -> None:
    response = await client.post("/v1/notes/first")
    assert response.status_code == 201
    assert await _titles(database_url) == ["first"]


async def test_a_request_that_raises_a_domain_error_rolls_back(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post("/v1/notes/doomed/then-fail")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/conflict")
    assert await _titles(database_url) == []


async def test_a_failed_commit_is_a_problem_document_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    assert (await client.post("/v1/notes/same")).status_code == 201
    # autoflush is off: the INSERT and its unique violation happen only at commit.
    response = await client.post("/v1/notes/same")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 409
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert "INSERT" not in response.text  # no SQL leaks to the client
    assert await _titles(database_url) == ["same"]
    # The session was returned to the pool in a usable state.
    assert (await client.post("/v1/notes/other")).status_code == 201
    assert await _titles(database_url) == ["same", "other"]


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}"
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            journal_mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
            busy_timeout = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
            synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar_one()
    finally:
        await engine.dispose()
    assert journal_mode == "wal"
    assert foreign_keys == 1
    assert busy_timeout == SQLITE_BUSY_TIMEOUT_MS
    assert synchronous == 1  # NORMAL


async def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/fk.db"
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
            await connection.execute(
                text(
                    "CREATE TABLE child (id INTEGER PRIMARY KEY,"
                    " parent_id INTEGER REFERENCES parent(id))"
                )
            )
        with pytest.raises(Exception, match="FOREIGN KEY"):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO child (id, parent_id) VALUES (1, 42)"))
        async with engine.connect() as connection:
            count = (
                await connection.execute(select(func.count()).select_from(text("child")))
            ).scalar_one()
        assert count == 0
    finally:
        await engine.dispose()


async def test_a_sqlite_file_in_a_missing_folder_is_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/deep/er/part.db"
    database = Database(url)
    try:
        await database.ping()
    finally:
        await database.dispose()


async def test_a_session_the_endpoint_never_uses_costs_no_connection_and_no_commit(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await engine.dispose()
    app = build_app(routers=[router], database_url=database_url)
    seen: list[str] = []
    sync_engine = app.state.database.engine.sync_engine
    event.listen(sync_engine, "checkout", lambda *_: seen.append("checkout"))
    event.listen(sync_engine, "commit", lambda *_: seen.append("commit"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sample") as client,
    ):
        assert (await client.get("/v1/notes/unused-session")).status_code == 200
        assert seen == []
        # A session that ran SQL checks a connection out and ends its transaction.
        assert (await client.get("/v1/notes/count")).json() == {"count": 0}
        assert seen == ["checkout", "commit"]
        # Objects added and never flushed are still committed.
        assert (await client.post("/v1/notes/added")).status_code == 201
    assert await _titles(database_url) == ["added"]


async def test_a_direct_read_runs_a_prebuilt_select_on_a_pooled_connection(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
            await connection.execute(text("INSERT INTO note (id, title) VALUES (1, 'a'), (2, 'b')"))
        # A literal of the statement (the CASE's 0 and 1) is bound with the caller's values.
        read = DirectRead(
            select(Note.title, case((Note.id > 1, 0), else_=1))
            .where(Note.title >= bindparam("title"))
            .order_by(Note.id)
        )
        assert [tuple(r) for r in await read.rows(engine, {"title": "a"})] == [("a", 1), ("b", 0)]
        assert [tuple(r) for r in await read.rows(engine, {"title": "b"})] == [("b", 0)]
        with pytest.raises(KeyError):
            await read.rows(engine, {})  # a missing value is an error, not NULL
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_direct_reads_wait_their_turn_below_the_pool_size(database_url: str) -> None:
    # More reads at once than the pool holds would take overflow connections, opened and
    # closed per read: at most pool size - 2 run at once, the rest wait (and all answer).
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
            await connection.execute(text("INSERT INTO note (id, title) VALUES (1, 'a')"))
        read = DirectRead(select(Note.title).where(Note.id == bindparam("id")))
        pool: Any = engine.pool
        most = 0
        checkout_count = 0

        def on_checkout(*_: object) -> None:
            nonlocal most, checkout_count
            checkout_count += 1
            most = max(most, pool.checkedout())

        event.listen(engine.sync_engine, "checkout", on_checkout)
        answers = await asyncio.gather(*(read.rows(engine, {"id": 1}) for _ in range(60)))
        assert [tuple(r) for rows in answers for r in rows] == [("a",)] * 60
        assert checkout_count == 60
        assert most <= pool.size() - 2
        assert pool.overflow() <= 0  # no connection beyond the pool's own was opened
    finally:
        await engine.dispose()


async def test_a_direct_read_fails_as_the_driver_adapter_would(database_url: str) -> None:
    # On PostgreSQL the read runs on asyncpg itself; its errors still come as the DBAPI
    # adapter's (which the problem handlers know), e.g. NUL in text (SQLSTATE 22021).
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        read = DirectRead(select(Note.id).where(Note.title == bindparam("title")))
        if not database_url.startswith("postgresql"):
            assert await read.rows(engine, {"title": "a\x00b"}) == []  # SQLite holds NUL
            return
        with pytest.raises(AsyncAdapt_asyncpg_dbapi.Error) as raised:
            await read.rows(engine, {"title": "a\x00b"})
        assert getattr(raised.value, "sqlstate", None) == "22021"
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("title", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
async def test_text_the_database_cannot_hold_is_a_422_problem(
    client: httpx.AsyncClient, database_url: str, title: str
) -> None:
    # ensure_ascii: the lone surrogate travels as the JSON escape \ud800 (no UTF-8 form).
    response = await client.post(
        "/v1/note-searches",
        content=json.dumps({"title": title}).encode(),
        headers={"Content-Type": "application/json"},
    )
    if response.status_code == 200:
        # SQLite holds NUL: nothing has that title. PostgreSQL refuses it in text.
        assert database_url.startswith("sqlite") and title == "a\x00b"
        assert response.json() == {"id": None}
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://pingtai.dev/problems/unstorable-text"
    assert body["status"] == 422 and "SELECT" not in response.text
    # The session went back to the pool usable.
    assert (await client.post("/v1/notes/fine")).status_code == 201


async def test_direct_reads_on_own_connections_leave_the_pool_and_see_every_commit(
    tmp_path: Path,
) -> None:
    # SQLite only: a hot read runs on connections set apart from the pool (opened through it,
    # so with its pragmas), reused from read to read, and never stale after a commit.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'readers.db'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
            await connection.execute(text("INSERT INTO note (id, title) VALUES (1, 'a')"))
        checkouts = 0

        def on_checkout(*_: object) -> None:
            nonlocal checkouts
            checkouts += 1

        event.listen(engine.sync_engine, "checkout", on_checkout)
        by_id = select(Note.title).where(Note.id <= bindparam("id")).order_by(Note.id)
        read = DirectRead(by_id, own_connections=True)
        pragma = DirectRead(
            select(text("foreign_keys")).select_from(text("pragma_foreign_keys()")),
            own_connections=True,
        )
        for _ in range(20):
            assert [tuple(r) for r in await read.rows(engine, {"id": 9})] == [("a",)]
        assert checkouts == 1  # the one connection opened for these reads, then kept
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert [tuple(r) for r in await pragma.rows(engine, {})] == [(1,)]  # the pool's pragmas

        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO note (id, title) VALUES (2, 'b')"))
        assert [tuple(r) for r in await read.rows(engine, {"id": 9})] == [("a",), ("b",)]

        # Reads in flight at once each get a connection; those are kept for the next reads.
        answers = await asyncio.gather(*(read.rows(engine, {"id": 1}) for _ in range(8)))
        assert [tuple(r) for rows in answers for r in rows] == [("a",)] * 8
        opened = checkouts
        await asyncio.gather(*(read.rows(engine, {"id": 1}) for _ in range(8)))
        assert checkouts == opened
    finally:
        await engine.dispose()


async def test_a_write_turn_is_first_come_first_served_and_handed_on() -> None:
    turn = WriteTurn()
    assert turn.take_now()
    order: list[str] = []

    async def writer(name: str) -> None:
        await turn.take(timeout=60)
        order.append(name)
        turn.release()

    queued = [asyncio.create_task(writer(name)) for name in ("a", "b")]
    await asyncio.sleep(0)
    assert not turn.take_now()  # held, and others queued
    turn.release()  # handed to "a" directly: no newcomer takes it in between
    assert turn.locked() and not turn.take_now()
    await asyncio.gather(*queued)
    assert order == ["a", "b"]
    assert not turn.locked() and turn.take_now()


async def test_a_write_turn_waiter_that_times_out_leaves_the_queue() -> None:
    turn = WriteTurn()
    assert turn.take_now()
    with pytest.raises(TimeoutError):
        await turn.take(timeout=0)
    turn.release()
    assert not turn.locked()
    assert turn.take_now()  # no one left queued


async def test_a_write_turn_handed_to_a_cancelled_waiter_passes_on() -> None:
    turn = WriteTurn()
    assert turn.take_now()
    first = asyncio.create_task(turn.take(timeout=60))
    second = asyncio.create_task(turn.take(timeout=60))
    await asyncio.sleep(0)
    turn.release()  # handed to the first ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await second  # the turn went on to the second
    assert turn.locked()
    turn.release()
    assert not turn.locked()

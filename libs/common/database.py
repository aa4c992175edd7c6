"""Async SQLAlchemy 2: engines for SQLite and PostgreSQL, sessions, a typed declarative base."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import MetaData, event, exc, text
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState, QueuePool
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import Select
from sqlalchemy.util import await_only, greenlet_spawn

from libs.common import sqlite_driver

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql.dml import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite.dml import Insert as SQLiteInsert

# Constraint names Alembic can diff and drop on every backend.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 5000
# How long a transaction of this process may queue for the SQLite write lock behind the others
# (first come, first served) before it fails as SQLite's own "database is locked" would.
SQLITE_WRITE_QUEUE_TIMEOUT_S = 30.0
SQLITE_POOL_SIZE = 16
# PostgreSQL connections per process (pool + overflow): with N worker processes or replicas the
# server sees up to N times this many.
POSTGRES_POOL_SIZE = 10
POSTGRES_MAX_OVERFLOW = 10
# How long a request waits for a pooled connection before it fails (503, libs.common.errors).
POOL_TIMEOUT_S = 30.0


def new_metadata() -> MetaData:
    """A MetaData with the project's naming convention; each service's ``Base`` owns one."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def dialect_insert(dialect_name: str) -> Callable[[Any], PostgresInsert | SQLiteInsert]:
    """The ``insert`` (with ``on_conflict_do_*``) of the dialect named: PostgreSQL's for
    ``"postgresql"``, SQLite's otherwise. PostgreSQL's dialect is imported only when asked for,
    so a part on SQLite never loads it (≈ 2 MB a process)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not open transactions itself (it would BEGIN DEFERRED before the first
    # INSERT); SQLiteWriters begins them, IMMEDIATE, at a transaction's first write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; NORMAL is durable in WAL mode except on power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            # A folder we cannot make must not crash the app at start-up: connecting fails
            # instead, and /readyz reports the database unready.
            with contextlib.suppress(OSError):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        # SQLAlchemy's aiosqlite dialect over our inline DBAPI (libs.common.sqlite_driver):
        # no thread trips for statements that cannot wait.
        engine = create_async_engine(
            url,
            echo=echo,
            module=sqlite_driver.dbapi,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **_sqlite_pool_size(parsed),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        SQLiteWriters(engine, key=_sqlite_file_key(database) or f"engine-{id(engine)}").install()
        if _sqlite_file_key(database) is not None:
            SQLiteReaders(engine)  # an in-memory database has one connection, the pool's
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=POSTGRES_POOL_SIZE,
        max_overflow=POSTGRES_MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_S,
    )


def _sqlite_pool_size(url: URL) -> dict[str, float]:
    # A connection is a file handle and a page cache: keep enough that requests waiting on
    # something else while they hold one never make others open and close connections.
    # (An in-memory database has one connection, shared.)
    if not issubclass(SQLiteDialect_aiosqlite.get_pool_class(url), QueuePool):
        return {}
    return {
        "pool_size": SQLITE_POOL_SIZE,
        "max_overflow": SQLITE_POOL_SIZE,
        "pool_timeout": POOL_TIMEOUT_S,
    }


def _sqlite_file_key(database: str | None) -> str | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return str(Path(database).resolve())


# Statements that never need the write lock: reads, and what SQLite refuses inside a transaction.
_NO_WRITE_LOCK = re.compile(
    r"\s*(SELECT|VALUES|EXPLAIN|PRAGMA|BEGIN|COMMIT|END|ROLLBACK|RELEASE|VACUUM|ATTACH|DETACH)\b",
    re.IGNORECASE,
)
_CTE = re.compile(r"\s*WITH\b", re.IGNORECASE)
_WRITE_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_HOLDS_WRITE_LOCK = "pingtai_sqlite_write_lock"


def _needs_write_lock(statement: str) -> bool:
    if _NO_WRITE_LOCK.match(statement):
        return False
    if _CTE.match(statement):
        return _WRITE_WORD.search(statement) is not None
    # INSERT, UPDATE, DELETE, DDL, SAVEPOINT (which opens a transaction), anything unknown.
    return True


# Each SQLite engine's writers (DirectWrite takes the write lock through them).
_sqlite_writers: weakref.WeakKeyDictionary[Engine, SQLiteWriters] = weakref.WeakKeyDictionary()


class WriteTurn:
    """A first-come, first-served turn to write (an ``asyncio.Lock`` that can be taken without
    awaiting when it is free).

    ``take_now`` takes a free turn with no one queued from sync code (inside a greenlet: no
    trip to the event loop, no timeout armed — ≈ 20 µs of CPU a write transaction here);
    ``take`` queues for it. ``release`` hands the turn straight to the first one queued, so no
    newcomer can take it in between.
    """

    __slots__ = ("_held", "_queue")

    def __init__(self) -> None:
        self._held = False
        self._queue: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """Whether someone holds the turn."""
        return self._held

    def take_now(self) -> bool:
        """Take the turn if it is free and no one is queued for it; whether it was taken."""
        if self._held or self._queue:
            return False
        self._held = True
        return True

    async def take(self, timeout: float) -> None:
        """Take the turn, queued behind those before; ``TimeoutError`` after ``timeout``."""
        if self.take_now():
            return
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(handed)
        try:
            async with asyncio.timeout(timeout):
                await handed
        except BaseException:
            if handed.done() and not handed.cancelled():
                self.release()  # handed the turn as the wait ended: pass it on
            else:
                handed.cancel()
                with contextlib.suppress(ValueError):
                    self._queue.remove(handed)
            raise

    def release(self) -> None:
        """Hand the turn to the first one queued still waiting, else free it."""
        while self._queue:
            handed = self._queue.popleft()
            if not handed.done():
                handed.set_result(None)  # the turn stays held, now by that one
                return
        self._held = False


# One write queue per SQLite file and event loop, shared by every engine of this process.
_write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WriteTurn]] = (
    weakref.WeakKeyDictionary()
)


def _write_lock(key: str) -> WriteTurn:
    locks = _write_locks.setdefault(asyncio.get_running_loop(), {})
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = WriteTurn()
    return lock


class SQLiteWriters:
    """One writer at a time per SQLite file in this process, and readers beside it (WAL).

    SQLite has one write lock per database. Connections that wait for it in SQLite's busy
    handler poll with growing sleeps, unfairly: under a few dozen concurrent writers some wait
    past the busy timeout and fail. Here a transaction's first write statement waits its turn in
    an asyncio lock (first come, first served), then runs ``BEGIN IMMEDIATE`` so the transaction
    holds SQLite's write lock from its start and never has to upgrade a read snapshot; COMMIT or
    ROLLBACK hand the turn on. Statements before the first write run outside any transaction,
    as pysqlite always ran them, so reads never queue. Other processes on the same file still
    meet this one in SQLite's busy handler.
    """

    def __init__(self, engine: AsyncEngine, *, key: str) -> None:
        self.engine = engine
        self.key = key

    def install(self) -> None:
        """Listen to the engine's statements, transaction ends and pool returns."""
        sync_engine = self.engine.sync_engine
        _sqlite_writers[sync_engine] = self
        event.listen(sync_engine, "before_cursor_execute", self._before_execute)
        event.listen(sync_engine, "commit", self._commit)
        event.listen(sync_engine, "rollback", self._rollback)
        event.listen(sync_engine, "reset", self._reset)
        event.listen(sync_engine, "invalidate", self._lost)
        event.listen(sync_engine, "close", self._lost)

    def _before_execute(
        self,
        conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if _HOLDS_WRITE_LOCK in conn.info or not _needs_write_lock(statement):
            return
        self.hold(conn, statement, parameters)

    def hold(
        self, conn: Connection, statement: str = "BEGIN IMMEDIATE", parameters: Any = None
    ) -> None:
        """Take this file's write turn and SQLite's write lock for ``conn``'s transaction
        (inside a greenlet); a no-op when it holds them already."""
        if _HOLDS_WRITE_LOCK in conn.info:
            return
        lock = _write_lock(self.key)
        dbapi = conn.dialect.loaded_dbapi
        try:
            if not lock.take_now():
                await_only(lock.take(SQLITE_WRITE_QUEUE_TIMEOUT_S))
        except TimeoutError:
            error = dbapi.OperationalError(
                "database is locked (queued behind this process's writers)"
            )
            raise exc.OperationalError(statement, parameters, error) from None
        try:
            _begin_immediate(_driver(conn))
        except BaseException:
            lock.release()
            raise
        conn.info[_HOLDS_WRITE_LOCK] = lock

    def _commit(self, conn: Connection) -> None:
        self._end(conn, "COMMIT")

    def _rollback(self, conn: Connection) -> None:
        self._end(conn, "ROLLBACK")

    def _end(self, conn: Connection, statement: str) -> None:
        if conn.closed or conn.invalidated:
            return  # the pool's invalidate event already handed the turn on
        lock: WriteTurn | None = conn.info.pop(_HOLDS_WRITE_LOCK, None)
        if lock is None:
            return
        driver = _driver(conn)
        try:
            # Ended here rather than by the driver's commit() or rollback(), which SQLAlchemy
            # calls next (no-ops then): the turn must pass on only once the transaction is over.
            _run_inline(driver, statement)
        except BaseException:
            if statement == "COMMIT":
                with contextlib.suppress(Exception):
                    _run_inline(driver, "ROLLBACK")
            raise
        finally:
            lock.release()

    def _reset(self, dbapi_connection: Any, record: Any, _state: PoolResetState) -> None:
        # Back in the pool still in a write transaction (the session's own end failed or never
        # ran): roll back while the turn is still ours, then hand it on. (A connection
        # detached from the pool has no record: its transactions end before it is closed.)
        lock: WriteTurn | None = record.info.pop(_HOLDS_WRITE_LOCK, None) if record else None
        if lock is None:
            return
        try:
            dbapi_connection.rollback()  # inline: no await, safe outside the loop too
        finally:
            lock.release()

    def _lost(self, _dbapi_connection: Any, record: Any, *_: Any) -> None:
        lock: WriteTurn | None = record.info.pop(_HOLDS_WRITE_LOCK, None) if record else None
        if lock is not None:
            lock.release()


def _driver(conn: Connection) -> sqlite_driver.Connection:
    return cast(sqlite_driver.Connection, conn.connection.dbapi_connection)


def _begin_immediate(driver: sqlite_driver.Connection) -> None:
    try:
        driver.begin_immediate()
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error) from error


def _run_inline(driver: sqlite_driver.Connection, statement: str) -> None:
    try:
        driver.run_inline(statement)
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(statement, None, error, sqlite3.Error) from error


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class Database:
    """One engine and its session factory, owned by a part's app."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self.sessionmaker = create_sessionmaker(self.engine)

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


class DirectRead:
    """A prebuilt ``SELECT`` run on a pooled connection's driver, in one greenlet trip.

    For a part's hottest reads, where SQLAlchemy costs more than the database: one short read
    through ``SessionDep`` and the ORM costs ≈ 430 µs of CPU over a route without SQL, this way
    ≈ 80 µs (``bench/bench_common.py``: ``/v1/one`` against ``/v1/direct``), with no session,
    statement building, execution context or result objects. It uses the same pool: on SQLite
    the driver's cursor (so the SQLite driver's time budget still moves a slow read off the
    loop), on PostgreSQL asyncpg itself (its prepared-statement cache, and no transaction begun
    and rolled back around one SELECT, as the DBAPI adapter's cursor does; its errors are
    translated as the adapter translates them). It reads committed data outside any
    transaction. No SQLAlchemy execution events fire for it (no SQL span when tracing is on),
    and rows come as the driver gives them, without SQLAlchemy's type processing: SQLite gives
    times as ISO text and booleans as 0 and 1, PostgreSQL ``datetime`` and ``bool``; JSON as
    text.

    At most ``pool size - 2`` run at once per engine (the rest wait their turn): more would
    take the pool's overflow connections, which are opened and closed again each time (on
    PostgreSQL a new connection per read under load, a fifth of a server's CPU).

    ``own_connections``: on SQLite, run on connections set apart from the pool for such reads
    (``SQLiteReaders``) from the coroutine itself — no checkout and return, no greenlet trip
    (≈ 5-10 µs of CPU a read instead of ≈ 35-45 µs); a slow read still moves to a worker
    thread. They are never checked out of the pool, so the pool's counts do not show them.
    """

    __slots__ = ("_compiled", "_turns", "own_connections", "statement")

    def __init__(self, statement: Select[Any], *, own_connections: bool = False) -> None:
        self.statement = statement
        self.own_connections = own_connections
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}
        self._turns: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _sql(self, engine: Engine) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        held = self._compiled.get(engine.dialect.name)
        if held is None:
            compiled = self.statement.compile(dialect=engine.dialect)
            order = compiled.positiontup
            # The statement's own literals (CASE ... THEN 0) are bound parameters too.
            held = self._compiled[engine.dialect.name] = (
                compiled.string,
                tuple(order) if order is not None else None,
                {k: v for k, v in compiled.params.items() if not compiled.binds[k].required},
            )
        return held

    def _parameters(self, engine: Engine, values: dict[str, Any]) -> tuple[str, Any]:
        sql, order, literals = self._sql(engine)
        given = {**literals, **values} if literals else values
        return sql, given if order is None else tuple(given[name] for name in order)

    def _run(self, engine: Engine, values: dict[str, Any]) -> list[Any]:
        sql, parameters = self._parameters(engine, values)
        connection = engine.raw_connection()
        try:
            if engine.dialect.driver == "asyncpg":
                adapter: Any = connection.dbapi_connection
                try:
                    driver: Any = connection.driver_connection
                    return list(await_only(driver.fetch(sql, *parameters)))
                except Exception as error:
                    adapter._handle_exception(error)  # raises the DBAPI adapter's error
                    raise
            cursor = connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(sql, parameters)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        finally:
            connection.close()

    def _turn(self, engine: AsyncEngine) -> asyncio.Semaphore:
        turns = self._turns.get(engine)
        if turns is None:
            size = getattr(engine.sync_engine.pool, "size", lambda: 10)()
            turns = self._turns[engine] = asyncio.Semaphore(max(1, size - 2))
        return turns

    async def rows(self, engine: AsyncEngine, values: dict[str, Any]) -> list[Any]:
        """The statement's rows for ``values`` (every bound parameter by name)."""
        async with self._turn(engine):
            if self.own_connections:
                readers = _sqlite_readers.get(engine.sync_engine)
                if readers is not None:
                    return await readers.rows(*self._parameters(engine.sync_engine, values))
            return await greenlet_spawn(self._run, engine.sync_engine, values)


class SQLiteReaders:
    """SQLite connections of one engine set apart from its pool for ``DirectRead``s with
    ``own_connections``: opened by the pool (its connect events, the pragmas, ran) and detached
    from it; as many as reads were in flight at once (a read runs inline on the loop's thread,
    so usually one); closed when the engine is disposed."""

    def __init__(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine
        self._engine = weakref.ref(sync_engine)  # the engine's registry must not keep it alive
        self._idle: list[sqlite_driver.Connection] = []
        _sqlite_readers[sync_engine] = self
        event.listen(sync_engine, "engine_disposed", self._close_all)

    def _open(self) -> sqlite_driver.Connection:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("the engine of these readers is gone")
        pooled = engine.raw_connection()
        pooled.detach()  # the pool forgets it (and opens another when it needs one)
        return cast(sqlite_driver.Connection, pooled.dbapi_connection)

    async def rows(self, sql: str, parameters: Any) -> list[Any]:
        """The rows of one ``SELECT`` on an idle connection of these (opened if none is)."""
        connection = self._idle.pop() if self._idle else await greenlet_spawn(self._open)
        try:
            rows = await connection.read(sql, parameters)
        except asyncio.CancelledError:
            # A worker thread may still be reading on it: not reused, closed when collected.
            raise
        except BaseException:
            connection.close()
            raise
        self._idle.append(connection)
        return rows

    def _close_all(self, _engine: Engine) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                connection.close()


# Each SQLite engine's readers set apart from its pool (DirectRead(own_connections=True)).
_sqlite_readers: weakref.WeakKeyDictionary[Engine, SQLiteReaders] = weakref.WeakKeyDictionary()


_Prepared = tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...], dict[str, Any]]


class DirectWrite:
    """A prebuilt ``INSERT``, ``UPDATE`` or ``DELETE`` run on a transaction's DBAPI cursor.

    For a hot path's writes inside a transaction that already went through SQLAlchemy once:
    compiled once per dialect (``column_keys``: the columns every set of values gives), each
    value through its column type's bind processor, then the driver's ``execute`` or
    ``executemany`` — without SQLAlchemy's cache key, execution context, events or result
    (≈ 50-60 µs of CPU a statement here). No event fires for it, so on SQLite it takes the
    transaction's write lock itself (``SQLiteWriters.hold``, as the transaction's first write
    statement through SQLAlchemy would). On SQLite the statement runs through the driver's
    ``write`` (``libs.common.sqlite_driver``: no cursor object, no greenlet switch to satisfy
    SQLAlchemy's await check). Rows a ``RETURNING`` gives come as the driver gives them (no
    result processing), driver errors as the driver raises them.
    """

    __slots__ = ("_compiled", "column_keys", "statement", "stored_order")

    def __init__(
        self,
        statement: UpdateBase,
        *,
        column_keys: Sequence[str] | None = None,
        stored_order: Sequence[str] | None = None,
    ) -> None:
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        # The order of the values ``execute_many_stored`` takes (checked against the compiled
        # statement's parameters once per dialect).
        self.stored_order = tuple(stored_order) if stored_order is not None else None
        self._compiled: dict[str, _Prepared] = {}

    def _prepared(self, connection: Connection) -> _Prepared:
        dialect = connection.dialect
        held = self._compiled.get(dialect.name)
        if held is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.column_keys)
            names = tuple(compiled.positiontup or ())
            if not names and compiled.binds:
                raise TypeError(f"DirectWrite needs a positional paramstyle ({dialect.name})")
            if compiled.insert_prefetch or compiled.update_prefetch:
                # Python-side column defaults SQLAlchemy would compute per execution.
                raise TypeError("DirectWrite needs every defaulted column in column_keys")
            processors = tuple(
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            )
            literals = {k: v for k, v in compiled.params.items() if not compiled.binds[k].required}
            if self.stored_order is not None and names != self.stored_order:
                raise TypeError(f"DirectWrite's parameters are {names}, not {self.stored_order}")
            held = self._compiled[dialect.name] = (compiled.string, names, processors, literals)
        return held

    def _driver(self, connection: Connection) -> Any:
        if not connection.in_transaction():
            raise RuntimeError("DirectWrite runs inside a transaction (begin() first)")
        if connection.dialect.name == "sqlite" and _HOLDS_WRITE_LOCK not in connection.info:
            writers = _sqlite_writers.get(connection.engine)
            if writers is None:
                raise RuntimeError("DirectWrite on SQLite needs an engine from create_engine")
            writers.hold(connection, self._prepared(connection)[0])
        return connection.connection.dbapi_connection

    def _row(self, prepared: _Prepared, values: Mapping[str, Any]) -> tuple[Any, ...]:
        _, names, processors, literals = prepared
        given = {**literals, **values} if literals else values
        return tuple(
            given[name] if process is None else process(given[name])
            for name, process in zip(names, processors, strict=True)
        )

    def _run(self, connection: Connection, parameters: Any, *, many: bool) -> list[Any]:
        sql = self._prepared(connection)[0]
        driver = self._driver(connection)
        if isinstance(driver, sqlite_driver.Connection):
            # Inside the write transaction this connection holds: nothing can wait for a lock.
            return driver.write(sql, parameters, many=many)
        cursor = driver.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
                return []
            cursor.execute(sql, parameters)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> list[Any]:
        """Run the statement once with ``values`` (every bound parameter by name); the rows
        of its ``RETURNING``, if any."""
        return self._run(connection, self._row(self._prepared(connection), values), many=False)

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement for each of ``rows``."""
        if not rows:
            return
        prepared = self._prepared(connection)
        self._run(connection, [self._row(prepared, row) for row in rows], many=True)

    def execute_many_stored(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Run the statement for each of ``rows``: tuples in ``stored_order``, each value as
        the database stores it already (no column type's bind processing)."""
        if self.stored_order is None:
            raise TypeError("execute_many_stored needs the DirectWrite's stored_order")
        if rows:
            self._prepared(connection)  # checks the order
            self._run(connection, rows, many=True)


def _touched(session: AsyncSession) -> bool:
    """Whether ``session`` ran SQL, holds objects or has changes to flush."""
    return session.in_transaction() or bool(session.identity_map) or bool(session.new)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The unit of work of one request: commit when the endpoint returns, roll back if it raises.

    A session the endpoint never used costs nothing more: no commit, no close (each ~20 µs of
    SQLAlchemy's bookkeeping even with no connection).
    """
    database: Database = request.app.state.database
    session = database.sessionmaker()
    try:
        yield session
    except BaseException:
        if _touched(session):
            await session.rollback()
        raise
    else:
        if _touched(session):
            await session.commit()
    finally:
        if _touched(session):
            await session.close()


# scope="function": commit before the response is sent, so a failed commit is the client's error.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]

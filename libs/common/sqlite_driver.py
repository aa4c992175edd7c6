"""SQLite for SQLAlchemy's async engine without a thread trip per call.

SQLAlchemy's aiosqlite adapter sends every DBAPI call (cursor, execute, fetch, close, commit,
rollback) to aiosqlite's thread and back: five or six trips for one SELECT. Each trip costs the
event loop a few hundred microseconds of CPU here and, while the loop is busy, waits for the GIL
(up to ``sys.getswitchinterval()``, 5 ms) before its answer is seen. A short SQLite statement on
a page-cached WAL database costs tens of microseconds, so the trips, not SQLite, were the price.

This adapter keeps ``sqlite+aiosqlite://`` URLs and SQLAlchemy's aiosqlite dialect but gives it
a DBAPI over the standard ``sqlite3`` module that runs statements **inline**, on the event loop's
thread, in one call (execute and fetch all rows), and leaves the loop only where SQLite may wait:

- a ``SELECT`` runs with a time budget (``INLINE_BUDGET_S``); past it SQLite interrupts the
  statement (a read has no effects to undo) and it runs again in a worker thread, where SQLite
  releases the GIL and the loop serves other requests meanwhile; the statement's text is then
  sent to the thread directly for its next few runs;
- ``BEGIN IMMEDIATE`` (``begin_immediate``) tries once without waiting; when another process
  holds the write lock, it waits for it in a worker thread, under the busy timeout;
- everything else (writes inside the write transaction this process already holds, COMMIT,
  PRAGMAs, DDL) runs inline: it cannot wait for a lock, and a COMMIT that checkpoints the WAL
  (every ~1,000 pages) takes about 3 ms here.

One connection is used by one session at a time, as with any DBAPI; a worker thread runs a call
only while the session's greenlet awaits it, so the connection is never used by two threads at
once (``check_same_thread`` is off).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.util import await_only

T = TypeVar("T")

# How much CPU time a read may take on the event loop's thread before it moves to a worker
# thread (CPU time, not wall time: a read preempted by another process is not a slow read).
INLINE_BUDGET_S = 0.002
# SQLite calls the progress handler every this many virtual-machine instructions.
_PROGRESS_STEPS = 10_000
# Statements that ran past the budget go to a thread for this many next runs, then are tried
# inline again (a search's cost depends on its parameters).
_OFFLOADED_RUNS = 50
_OFFLOADED_MAX = 256
_SQLITE_BUSY = 5
_SQLITE_INTERRUPT = 9

_READ = re.compile(r"\s*SELECT\b", re.IGNORECASE)

# Worker threads for what must not hold the loop; SQLite releases the GIL while it works.
_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sqlite")
_offloaded: OrderedDict[str, int] = OrderedDict()


def _is_offloaded(statement: str) -> bool:
    runs = _offloaded.get(statement)
    if runs is None:
        return False
    if runs <= 1:
        del _offloaded[statement]
    else:
        _offloaded[statement] = runs - 1
    return True


def _mark_offloaded(statement: str) -> None:
    _offloaded[statement] = _OFFLOADED_RUNS
    _offloaded.move_to_end(statement)
    while len(_offloaded) > _OFFLOADED_MAX:
        _offloaded.popitem(last=False)


def _in_thread(function: Callable[[], T]) -> T:
    """Run ``function`` in a worker thread while the calling greenlet's coroutine awaits it."""
    loop = asyncio.get_running_loop()
    return await_only(loop.run_in_executor(_executor, function))


async def _nothing() -> None:
    return None


def _yield_nothing() -> None:
    # SQLAlchemy's AsyncConnection.execute checks that the driver awaited something (a guard
    # against sync drivers); awaiting a finished coroutine costs two greenlet switches.
    await_only(_nothing())


_Result = tuple[Any, list[Any] | None, int | None, int]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Result:
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class Cursor:
    """A DBAPI cursor whose rows are all fetched when the statement runs."""

    __slots__ = ("_connection", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    server_side = False

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._rows: deque[Any] = deque()
        self.arraysize = 1
        self.description: Any = None
        self.lastrowid: int | None = None
        self.rowcount = -1

    def execute(self, operation: str, parameters: Any = None) -> None:
        """Run one statement and keep its rows."""
        self._take(self._connection._execute(operation, parameters or (), many=False))

    def executemany(self, operation: str, seq_of_parameters: Any) -> None:
        """Run one statement for each set of parameters."""
        self._take(self._connection._execute(operation, seq_of_parameters, many=True))

    def _take(self, result: _Result) -> None:
        description, rows, lastrowid, rowcount = result
        self.description = description
        self._rows = deque(rows) if rows else deque()
        if description:
            self.lastrowid = self.rowcount = -1
        else:
            self.lastrowid, self.rowcount = lastrowid, rowcount

    def setinputsizes(self, *inputsizes: Any) -> None:
        """Nothing to do for SQLite."""

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's async results call this; the rows are fetched already."""

    def close(self) -> None:
        """Drop rows not fetched."""
        self._rows.clear()

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def fetchone(self) -> Any:
        """The next row, or None."""
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        """Up to ``size`` next rows."""
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> Sequence[Any]:
        """Every remaining row."""
        rows = list(self._rows)
        self._rows.clear()
        return rows


class Connection:
    """A DBAPI connection over ``sqlite3`` for SQLAlchemy's aiosqlite dialect."""

    __slots__ = ("_busy_timeout_ms", "_connection", "_deadline", "_interrupted", "_waits")

    def __init__(self, connection: sqlite3.Connection, *, busy_timeout_ms: int) -> None:
        # The dialect reaches the driver's connection through this attribute.
        self._connection = connection
        self._busy_timeout_ms = busy_timeout_ms
        self._deadline = 0.0
        self._interrupted = False
        # Whether SQLite's busy timeout is set (else 0, as begin_immediate leaves it): set again
        # before the next statement outside a transaction, so a connection that only writes
        # (the exchange ledger's) does not set and unset it around every transaction.
        self._waits = True

    def _wait_for_locks(self) -> None:
        if not self._waits:
            self._connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            self._waits = True

    # -- statements ---------------------------------------------------------------------------

    def _execute(self, operation: str, parameters: Any, *, many: bool) -> _Result:
        _yield_nothing()
        connection = self._connection
        if not self._waits and not connection.in_transaction:
            # (Inside the write transaction begin_immediate opened nothing waits for a lock.)
            self._wait_for_locks()
        if many or not _READ.match(operation):
            return _run(connection, operation, parameters, many)
        result = self._read_inline(operation, parameters)
        if result is not None:
            return result
        return _in_thread(lambda: _run(connection, operation, parameters, False))

    async def read(self, operation: str, parameters: Any) -> list[Any]:
        """The rows of one ``SELECT``, from a coroutine (no greenlet): inline within the time
        budget, else awaited in a worker thread, as ``execute`` runs a read."""
        if not self._waits and not self._connection.in_transaction:
            self._wait_for_locks()
        result = self._read_inline(operation, parameters)
        if result is None:
            result = await asyncio.get_running_loop().run_in_executor(
                _executor, _run, self._connection, operation, parameters, False
            )
        return result[1] or []

    def _read_inline(self, operation: str, parameters: Any) -> _Result | None:
        """Run a read on this thread unless it goes to a worker thread (then None): one sent
        there lately, or one SQLite interrupted past the budget (sent there for its next runs;
        a read has no effects to undo, and its transaction, if any, goes on)."""
        if _is_offloaded(operation):
            return None
        connection = self._connection
        self._deadline = time.thread_time() + INLINE_BUDGET_S
        self._interrupted = False
        connection.set_progress_handler(self._over_budget, _PROGRESS_STEPS)
        try:
            return _run(connection, operation, parameters, False)
        except sqlite3.OperationalError as error:
            if not (self._interrupted and _error_code(error) == _SQLITE_INTERRUPT):
                raise
        finally:
            connection.set_progress_handler(None, 0)
        _mark_offloaded(operation)
        return None

    def _over_budget(self) -> int:
        if time.thread_time() > self._deadline:
            self._interrupted = True
            return 1
        return 0

    def begin_immediate(self) -> None:
        """Start a write transaction; wait for another process's write lock off the loop."""
        connection = self._connection
        if self._waits:
            connection.execute("PRAGMA busy_timeout=0")
            self._waits = False
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if _error_code(error) != _SQLITE_BUSY:
                raise
        self._wait_for_locks()
        _in_thread(lambda: connection.execute("BEGIN IMMEDIATE"))

    def write(self, operation: str, parameters: Any, *, many: bool = False) -> list[Any]:
        """Run a write inside the write transaction this connection holds (``DirectWrite``):
        inline, awaiting nothing (no greenlet switch; nothing in it can wait for a lock); the
        rows of its ``RETURNING``, if any."""
        return _run(self._connection, operation, parameters, many)[1] or []

    def run_inline(self, statement: str) -> None:
        """Run one statement that cannot wait for a lock (COMMIT, ROLLBACK)."""
        self._connection.execute(statement)

    # -- the rest of DBAPI --------------------------------------------------------------------

    def cursor(self, server_side: bool = False) -> Cursor:
        """A cursor; "server-side" ones are buffered too (SQLite's rows are local anyway)."""
        return Cursor(self)

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        """Run one statement on a new cursor."""
        cursor = Cursor(self)
        cursor.execute(operation, parameters)
        return cursor

    def commit(self) -> None:
        """Commit the open transaction, if any (a no-op otherwise, without leaving the loop)."""
        self._connection.commit()

    def rollback(self) -> None:
        """Roll back the open transaction, if any."""
        self._connection.rollback()

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def terminate(self) -> None:
        """Close the connection (the pool's hard close)."""
        self._connection.close()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        return self._connection.in_transaction

    @property
    def isolation_level(self) -> str | None:
        """The sqlite3 module's isolation level (None: it never begins transactions itself)."""
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._connection.isolation_level = value

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Register a SQL function (SQLAlchemy adds ``regexp`` and ``floor``)."""
        self._connection.create_function(*args, **kwargs)


def _error_code(error: sqlite3.Error) -> int:
    return int(getattr(error, "sqlite_errorcode", -1)) & 0xFF


_FROM_SQLITE3 = frozenset(
    {"Error", "DatabaseError", "IntegrityError", "InterfaceError", "NotSupportedError",
     "OperationalError", "ProgrammingError", "Warning", "sqlite_version", "sqlite_version_info",
     "PARSE_COLNAMES", "PARSE_DECLTYPES", "Binary"}
)  # fmt: skip


class DBAPI:
    """The module-like object SQLAlchemy's aiosqlite dialect takes as its ``dbapi``."""

    paramstyle = "qmark"
    has_stop = True  # the dialect may terminate connections

    def __init__(self) -> None:
        # SQLAlchemy's aiosqlite dialect reads the wrapped modules' attributes from these.
        self.sqlite = sqlite3

    def __getattr__(self, name: str) -> Any:
        # The exception classes, versions and constants: sqlite3's own.
        if name in _FROM_SQLITE3:
            return getattr(sqlite3, name)
        raise AttributeError(name)

    def connect(self, database: str, **kwargs: Any) -> Connection:
        """Open ``database``; usable from the loop's thread and the worker threads."""
        kwargs.pop("async_fallback", None)
        kwargs["check_same_thread"] = False
        timeout = float(kwargs.get("timeout", 5.0))
        return Connection(
            sqlite3.connect(database, **kwargs), busy_timeout_ms=round(timeout * 1000)
        )


dbapi = DBAPI()

"""Every query of the access ledger: the writer's, the API's lists, and the audit's reads
(``verification.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    LargeBinary,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from libs.common import sqlite_driver
from libs.common.database import DirectWrite, dialect_insert
from services.exchange.ledger.chain import CONTENT_COLUMNS, ENCODING_VERSION, GENESIS_HASH
from services.exchange.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerHead

HEAD_ID = 1
_entry = cast(Table, LedgerEntry.__table__)
_head = cast(Table, LedgerHead.__table__)
_checkpoint = cast(Table, LedgerCheckpoint.__table__)


@dataclass(frozen=True, slots=True)
class Head:
    """The chain's head as the locking transaction sees it."""

    position: int
    entry_hash: str
    last_checkpoint_position: int
    last_checkpoint_at_us: int | None


# The writer's statements, built once: each batch runs them (in one greenlet trip, on the
# transaction's sync connection) without SQLAlchemy rebuilding or re-keying them.
_LOCK_HEAD = (
    update(_head)
    .where(_head.c.id == HEAD_ID)
    .values(position=_head.c.position)
    .returning(
        _head.c.position,
        _head.c.entry_hash,
        _head.c.last_checkpoint_position,
        _head.c.last_checkpoint_at,
    )
)
_MOVE_HEAD = (
    update(_head)
    .where(_head.c.id == HEAD_ID)
    .values(
        position=bindparam("b_position"),
        entry_hash=bindparam("b_entry_hash"),
        last_checkpoint_position=bindparam("b_last_checkpoint_position"),
        last_checkpoint_at=bindparam("b_last_checkpoint_at", type_=_head.c.last_checkpoint_at.type),
    )
)
_INSERT_ENTRIES = insert(_entry)
_INSERT_CHECKPOINT = insert(_checkpoint)
# The batch's statements go straight to the driver (the head's lock, as the transaction's
# first write, takes SQLite's write lock as SQLAlchemy's execution would): SQLAlchemy's
# execution of a prebuilt statement cost about a tenth of a one-entry batch's CPU each.
_LOCK_HEAD_DIRECT = DirectWrite(_LOCK_HEAD)
# An entry's values in the order the insert takes them: its position, the content its hash
# covers (as stored: the time in µs, the field list as its JSON text) and the two hashes.
ENTRY_COLUMNS = ("position", *CONTENT_COLUMNS, "prev_hash", "entry_hash")
_INSERT_ENTRIES_DIRECT = DirectWrite(
    _INSERT_ENTRIES, column_keys=ENTRY_COLUMNS, stored_order=ENTRY_COLUMNS
)
_MOVE_HEAD_DIRECT = DirectWrite(_MOVE_HEAD)


async def ensure_head(session: AsyncSession) -> None:
    """Create the head row of an empty chain unless it exists (a no-op when it does)."""
    values = {
        "id": HEAD_ID,
        "position": 0,
        "entry_hash": GENESIS_HASH,
        "last_checkpoint_position": 0,
        "last_checkpoint_at": None,
    }
    insert_for = dialect_insert(session.get_bind().dialect.name)
    await session.execute(insert_for(_head).values(values).on_conflict_do_nothing())


def lock_head(connection: Connection) -> Head | None:
    """Lock the head row until the transaction ends and read it (None if there is none).

    A write rather than ``SELECT ... FOR UPDATE``: on PostgreSQL it takes the row lock (a
    replica waiting behind another reads the head that one committed); on SQLite a transaction
    takes the database's write lock at its first write, which must come before the read.
    """
    rows = _LOCK_HEAD_DIRECT.execute(connection, {})
    if not rows:
        return None
    # As stored (no result processing): the checkpoint's time in microseconds already.
    position, entry_hash, last_checkpoint_position, last_checkpoint_at_us = rows[0]
    return Head(
        position=int(position),
        entry_hash=str(entry_hash),
        last_checkpoint_position=int(last_checkpoint_position),
        last_checkpoint_at_us=None if last_checkpoint_at_us is None else int(last_checkpoint_at_us),
    )


def insert_entries(connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert chained entries, each a tuple of ``ENTRY_COLUMNS`` as stored, in the transaction
    that locked the head (the values the hash covered go in as they are: no second encoding)."""
    _INSERT_ENTRIES_DIRECT.execute_many_stored(connection, rows)


def insert_checkpoint(connection: Connection, row: dict[str, Any]) -> None:
    """Insert a signed checkpoint."""
    connection.execute(_INSERT_CHECKPOINT, [row])


def move_head(
    connection: Connection,
    *,
    position: int,
    entry_hash: str,
    last_checkpoint_position: int,
    last_checkpoint_at: datetime | None,
) -> None:
    """Point the head at the new last entry (and checkpoint), in the transaction that locked
    it."""
    _MOVE_HEAD_DIRECT.execute(
        connection,
        {
            "b_position": position,
            "b_entry_hash": entry_hash,
            "b_last_checkpoint_position": last_checkpoint_position,
            "b_last_checkpoint_at": last_checkpoint_at,
        },
    )


async def list_entries(
    session: AsyncSession,
    *,
    dataset_id: str | None,
    actor_org_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before_position: int | None,
    limit: int,
) -> list[LedgerEntry]:
    """Entries newest first, filtered, below ``before_position`` (the cursor)."""
    query = select(LedgerEntry).order_by(LedgerEntry.position.desc()).limit(limit)
    if dataset_id is not None:
        query = query.where(LedgerEntry.dataset_id == dataset_id)
    if actor_org_id is not None:
        query = query.where(LedgerEntry.actor_org_id == actor_org_id)
    if since is not None:
        query = query.where(LedgerEntry.recorded_at >= since)
    if until is not None:
        query = query.where(LedgerEntry.recorded_at < until)
    if before_position is not None:
        query = query.where(LedgerEntry.position < before_position)
    return list((await session.scalars(query)).all())


async def list_checkpoints(
    session: AsyncSession, *, before_position: int | None, limit: int
) -> list[LedgerCheckpoint]:
    """Checkpoints newest first, below ``before_position`` (the cursor)."""
    query = select(LedgerCheckpoint).order_by(LedgerCheckpoint.position.desc()).limit(limit)
    if before_position is not None:
        query = query.where(LedgerCheckpoint.position < before_position)
    return list((await session.scalars(query)).all())


def entry_hash_at(connection: Connection, position: int) -> str | None:
    """The stored hash of the entry at ``position`` (None if there is none), in the
    transaction that locked the head (only a retried batch asks)."""
    found = connection.execute(
        select(_entry.c.entry_hash).where(_entry.c.position == position)
    ).scalar_one_or_none()
    return None if found is None else str(found)


# --- The audit's reads (verification.py) -------------------------------------------------------
# Every value as stored, untouched by the columns' Python types: the audit hashes what is kept.
# On SQLite, text may hold bytes that are not UTF-8 (the driver cannot decode them): the
# re-check, the head and the checkpoints read each value with its storage class, text as its
# stored bytes (``_sqlite_stored``), and ``_decoded`` turns them back into the stored values.

_RAW_TYPES: dict[str, Any] = {"recorded_at": BigInteger, "fields": Text}
# position, prev_hash, the content columns, entry_hash: the stored row as Python hashes it.
_ROW_COLUMNS = [
    _entry.c.position,
    _entry.c.prev_hash,
    *(
        type_coerce(_entry.c[name], _RAW_TYPES[name]) if name in _RAW_TYPES else _entry.c[name]
        for name in CONTENT_COLUMNS
    ),
    _entry.c.entry_hash,
]
_HEAD = select(_head.c.position, _head.c.entry_hash).where(_head.c.id == HEAD_ID)
# The position alone: the hash, read as text, may be bytes that are not UTF-8 (SQLite).
_HEAD_POSITION = select(_head.c.position).where(_head.c.id == HEAD_ID)
_LAST_POSITION = select(func.max(_entry.c.position))
_CHECKPOINTS = select(
    _checkpoint.c.position,
    _checkpoint.c.entry_hash,
    type_coerce(_checkpoint.c.signed_at, BigInteger),
    _checkpoint.c.key_id,
    _checkpoint.c.signature,
).order_by(_checkpoint.c.position)


def _sqlite_stored(columns: Sequence[str]) -> str:
    """SQLite: each column's storage class and value, text as its stored bytes."""
    return ", ".join(
        f"typeof({c}), CASE typeof({c}) WHEN 'text' THEN CAST({c} AS BLOB) ELSE {c} END"
        for c in columns
    )


def _decoded(row: Sequence[Any], plain: int = 1) -> list[Any]:
    """A row of ``plain`` values then ``_sqlite_stored`` pairs as the stored values (bytes that
    are not UTF-8 as lone surrogates: no hash, key id or signature encodes them)."""
    values = list(row[:plain])
    for index in range(plain, len(row), 2):
        kind, value = row[index], row[index + 1]
        values.append(value.decode("utf-8", "surrogateescape") if kind == "text" else value)
    return values


# SQLite's walk, read on the driver's connection itself (sqlite_driver.Connection.read): a
# batch is fetched in a worker thread as plain tuples, without SQLAlchemy's result rows, and the
# encoding comes as bytes (SQLite's UTF-8 as stored: not decoded to str and encoded back).
_SQLITE_WALK = (
    f"SELECT position, prev_hash, entry_hash, CAST(json_array({ENCODING_VERSION}, position, "
    f"prev_hash, {', '.join(CONTENT_COLUMNS)}) AS BLOB) FROM {_entry.name} "
    "WHERE position >= ? AND position <= ? ORDER BY position LIMIT ?"
)
# SQLite's rows for Python's re-check, every value as stored (text that is not UTF-8 included:
# an entry holding it is altered).
_SQLITE_ROWS = (
    f"SELECT position, {_sqlite_stored(('prev_hash', *CONTENT_COLUMNS, 'entry_hash'))} "
    f"FROM {_entry.name} WHERE position >= ? AND position <= ? ORDER BY position LIMIT ?"
)
_SQLITE_HEAD = (
    f"SELECT position, {_sqlite_stored(('entry_hash',))} FROM {_head.name} WHERE id = {HEAD_ID}"
)
_SQLITE_CHECKPOINTS = (
    f"SELECT position, {_sqlite_stored(('signed_at', 'entry_hash', 'key_id', 'signature'))} "
    f"FROM {_checkpoint.name} ORDER BY position"
)


async def stored_head(conn: AsyncConnection) -> tuple[int, str] | None:
    """The head row's position and hash, as stored (None if it was deleted)."""
    if conn.dialect.name == "sqlite":
        row = (await conn.exec_driver_sql(_SQLITE_HEAD)).first()
        return None if row is None else (row[0], _decoded(row)[1])
    found = (await conn.execute(_HEAD)).first()
    return None if found is None else (found[0], found[1])


async def current_head_position(conn: AsyncConnection) -> int:
    """The head row's position now (it must exist)."""
    position: int = (await conn.execute(_HEAD_POSITION)).scalar_one()
    return position


async def last_entry_position(conn: AsyncConnection) -> int | None:
    """The highest position of any entry row (None if there is none)."""
    position: int | None = (await conn.execute(_LAST_POSITION)).scalar_one_or_none()
    return position


async def stored_checkpoints(conn: AsyncConnection) -> list[tuple[int, str, int, str, str]]:
    """Every checkpoint in position order, as stored: position, entry hash, signed-at in µs,
    key id, signature."""
    if conn.dialect.name == "sqlite":
        stored = await conn.exec_driver_sql(_SQLITE_CHECKPOINTS)
        return [(p, h, at, k, sig) for p, at, h, k, sig in (_decoded(row) for row in stored)]
    return [(p, h, at, k, sig) for p, h, at, k, sig in await conn.execute(_CHECKPOINTS)]


async def stored_entries(
    conn: AsyncConnection, first: int, last: int, limit: int
) -> list[Sequence[Any]]:
    """The entry rows from position ``first`` to ``last`` (at most ``limit``), each as stored:
    position, prev_hash, the content columns, entry_hash."""
    if conn.dialect.name == "sqlite":
        result = await conn.exec_driver_sql(_SQLITE_ROWS, (first, last, limit))
        return [_decoded(row) for row in result]
    query = (
        select(*_ROW_COLUMNS)
        .where(_entry.c.position >= first, _entry.c.position <= last)
        .order_by(_entry.c.position)
        .limit(limit)
    )
    return list(await conn.execute(query))


async def position_of_hash(conn: AsyncConnection, digest: str) -> int | None:
    """The position of an entry whose stored hash is ``digest`` (None if none)."""
    if not digest.isascii():  # text that was not UTF-8 (no hash is anything but hex)
        return None
    # No index on entry_hash: only a failed verification asks, once.
    result = await conn.execute(
        select(_entry.c.position).where(_entry.c.entry_hash == digest).limit(1)
    )
    position = result.scalar_one_or_none()
    return None if position is None else int(position)


def _json_text(column: Any) -> Any:
    """PostgreSQL: a value as Python's compact JSON writes it (``null`` for NULL)."""
    return func.coalesce(cast_(func.to_json(column), Text), literal("null"))


def canonical_encoding_sql(dialect: str) -> Any:
    """The canonical encoding built by the database (``chain.canonical_encoding``'s text).

    SQLite's ``json_array`` and PostgreSQL's ``to_json`` escape as Python's encoder does, so the
    database does the encoding (PostgreSQL the hashing too) and Python compares. A row where
    they disagree is re-hashed by Python from its stored values before it counts as altered.
    """
    values = [_entry.c.position, _entry.c.prev_hash, *(_entry.c[n] for n in CONTENT_COLUMNS)]
    if dialect != "postgresql":
        return func.json_array(literal(ENCODING_VERSION), *values)
    parts: list[Any] = [literal(f"[{ENCODING_VERSION},")]
    for index, column in enumerate(values):
        if index:
            parts.append(literal(","))
        parts.append(_json_text(column))
    parts.append(literal("]"))
    canonical = func.concat(*parts)
    return func.encode(func.sha256(func.convert_to(canonical, literal("UTF8"))), literal("hex"))


class ChainBatches:
    """The entries up to the head in position order, a batch per ``read``, each as
    ``(position, prev_hash, entry_hash, encoding)``.

    ``encoding`` is the database's canonical encoding: its SHA-256 in hex where ``hashed``
    (PostgreSQL), else the encoding's bytes as stored; None throughout a batch holding a value
    the database cannot encode (a BLOB put into SQLite, text that is not UTF-8, ...): Python
    decides from ``stored_entries``.
    """

    __slots__ = ("_conn", "_last", "_limit", "_query", "_sqlite", "hashed")

    def __init__(
        self,
        conn: AsyncConnection,
        *,
        last: int,
        limit: int,
        sqlite: sqlite_driver.Connection | None,
    ) -> None:
        self._conn = conn
        self._last = last
        self._limit = limit
        self._sqlite = sqlite
        self.hashed = conn.dialect.name == "postgresql"
        canonical = canonical_encoding_sql(conn.dialect.name)
        if not self.hashed:  # bytes, SQLite's UTF-8 as stored: no decode and encode back
            canonical = cast_(canonical, LargeBinary)
        self._query = (
            select(_entry.c.position, _entry.c.prev_hash, _entry.c.entry_hash, canonical)
            .order_by(_entry.c.position)
            .limit(limit)
        )

    async def read(self, start: int) -> Sequence[Any]:
        """The batch from position ``start``."""
        try:
            if self._sqlite is not None:
                return await self._sqlite.read(_SQLITE_WALK, (start, self._last, self._limit))
            bounds = (_entry.c.position >= start, _entry.c.position <= self._last)
            return (await self._conn.execute(self._query.where(*bounds))).all()
        except (DBAPIError, sqlite3.Error):
            # A value the database cannot encode (a BLOB put into SQLite, text that is not
            # UTF-8, ...): Python decides.
            found = await stored_entries(self._conn, start, self._last, self._limit)
            return [(row[0], row[1], row[-1], None) for row in found]


async def chain_batches(conn: AsyncConnection, *, last: int, limit: int) -> ChainBatches:
    """The chain's entries up to position ``last``, ``limit`` per batch (on SQLite read on the
    driver's own connection when ``conn`` has one)."""
    sqlite = None
    if conn.dialect.name != "postgresql":
        raw = (await conn.get_raw_connection()).dbapi_connection
        sqlite = raw if isinstance(raw, sqlite_driver.Connection) else None
    return ChainBatches(conn, last=last, limit=limit, sqlite=sqlite)

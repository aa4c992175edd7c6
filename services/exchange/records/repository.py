"""Every query about hosted records, their versions and imports."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import DateTime, String, Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.types import TypeDecorator, TypeEngine

from libs.common.database import DirectRead, DirectWrite
from services.exchange.records.models import HostedRecord, HostedRecordVersion, RecordImport

# Bound parameters per IN list: well under SQLite's and asyncpg's limits.
IN_CHUNK = 900
_records = cast(Table, HostedRecord.__table__)
# One subject's current record, the query path's only statement: built once, so SQLAlchemy
# neither rebuilds nor re-keys it per request (an IN list is re-rendered on every execution).
_CURRENT_ONE = select(_records.c.subject_key, _records.c.version, _records.c.data).where(
    _records.c.dataset_id == bindparam("dataset_id"),
    _records.c.subject_key == bindparam("subject_key"),
)


# The single-record fetch's read: no session; on SQLite on connections of its own, without a
# pool checkout or a greenlet trip (libs.common.database).
_CURRENT_ONE_DIRECT = DirectRead(_CURRENT_ONE, own_connections=True)


async def current_record(
    engine: AsyncEngine, *, dataset_id: str, subject_key: str
) -> tuple[int, str] | None:
    """``(version, data)`` of one subject's current record, if it has one."""
    rows = await _CURRENT_ONE_DIRECT.rows(
        engine, {"dataset_id": dataset_id, "subject_key": subject_key}
    )
    return (rows[0][1], rows[0][2]) if rows else None


async def plan_for_these_keys(session: AsyncSession) -> None:
    """On PostgreSQL, plan this transaction's statements for their actual keys.

    asyncpg prepares statements and PostgreSQL may switch a prepared statement to a generic plan
    made while the table was still small (a sequential scan): after a first upload, the lookup of
    a batch's keys took 200 ms instead of 3 ms.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


async def current_data(
    reader: AsyncSession | AsyncConnection, *, dataset_id: str, subject_keys: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """``{subject_key: (version, data)}`` of the current records among ``subject_keys``."""
    found: dict[str, tuple[int, str]] = {}
    if len(subject_keys) == 1:
        result = await reader.execute(
            _CURRENT_ONE, {"dataset_id": dataset_id, "subject_key": subject_keys[0]}
        )
        for key, version, data in result.tuples():
            found[key] = (version, data)
        return found
    for start in range(0, len(subject_keys), IN_CHUNK):
        chunk = subject_keys[start : start + IN_CHUNK]
        rows = await reader.execute(
            select(HostedRecord.subject_key, HostedRecord.version, HostedRecord.data).where(
                HostedRecord.dataset_id == dataset_id, HostedRecord.subject_key.in_(chunk)
            )
        )
        for key, version, data in rows.tuples():
            found[key] = (version, data)
    return found


def current_for_update(
    connection: Connection, *, dataset_id: str, subject_keys: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """``{subject_key: (version, data)}`` of the current records among ``subject_keys``, read
    in the import batch's transaction (which holds the dataset: see ``write_batch``)."""
    if connection.dialect.name != "sqlite":
        found: dict[str, tuple[int, str]] = {}
        for start in range(0, len(subject_keys), IN_CHUNK):
            rows = connection.execute(
                _CURRENT_IN,
                {"dataset_id": dataset_id, "keys": subject_keys[start : start + IN_CHUNK]},
            )
            found.update((key, (version, data)) for key, version, data in rows.tuples())
        return found
    # SQLite: on the driver's cursor, the IN list's text made once per length, rows as plain
    # tuples (SQLAlchemy rendered the expanding IN list and made a result row of each, per batch
    # about as much CPU as SQLite's lookups).
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        found = {}
        for start in range(0, len(subject_keys), IN_CHUNK):
            chunk = subject_keys[start : start + IN_CHUNK]
            cursor.execute(_sqlite_current_in(len(chunk)), (dataset_id, *chunk))
            found.update((key, (version, data)) for key, version, data in cursor.fetchall())
        return found
    finally:
        cursor.close()


_CURRENT_IN = select(_records.c.subject_key, _records.c.version, _records.c.data).where(
    _records.c.dataset_id == bindparam("dataset_id"),
    _records.c.subject_key.in_(bindparam("keys", expanding=True)),
)


@functools.lru_cache(maxsize=8)
def _sqlite_current_in(count: int) -> str:
    return (
        f"SELECT subject_key, version, data FROM {_records.name} "
        f"WHERE dataset_id = ? AND subject_key IN ({', '.join('?' * count)})"
    )


def write_batch(
    connection: Connection,
    *,
    dataset_id: str,
    dataset_version: int,
    import_id: str,
    now: datetime,
    inserts: Sequence[tuple[str, str]],
    updates: Sequence[tuple[str, int, str]],
) -> None:
    """Insert new current records (``(subject_key, data)``), replace changed ones
    (``(subject_key, version, data)``) and append a version of each, in the import batch's
    transaction (which wrote already: on SQLite it holds the write lock)."""
    at = _batch_time(connection.dialect, now)
    _INSERT_RECORDS.execute_many_stored(
        connection, [(dataset_id, key, 1, data, at) for key, data in inserts]
    )
    _UPDATE_RECORDS.execute_many_stored(
        connection, [(version, data, at, dataset_id, key) for key, version, data in updates]
    )
    versions = [(key, 1, data) for key, data in inserts]
    versions += updates
    _INSERT_VERSIONS.execute_many_stored(
        connection,
        [(dataset_id, key, version, data, dataset_version, import_id, at)
         for key, version, data in versions],
    )  # fmt: skip


class _BatchTime(TypeDecorator[Any]):
    """A batch's time as the driver takes it (``_batch_time``): on SQLite the text
    SQLAlchemy's DateTime renders, made once per batch instead of once per row."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        sqlite = dialect.name == "sqlite"
        return dialect.type_descriptor(String() if sqlite else DateTime(timezone=True))


def _batch_time(dialect: Dialect, now: datetime) -> Any:
    if dialect.name != "sqlite":
        return now
    render = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    return now if render is None else render(now)


_versions = cast(Table, HostedRecordVersion.__table__)
# Prebuilt writes run with the batch's rows as tuples in the statement's parameter order
# (``DirectWrite.execute_many_stored``: no mapping and no bind processing per row; the batch's
# time comes rendered, ``_BatchTime``). The transaction holds SQLite's write lock already.
_INSERT_RECORDS = DirectWrite(
    insert(_records).values(
        dataset_id=bindparam("dataset_id"), subject_key=bindparam("subject_key"),
        version=bindparam("version"), data=bindparam("data"),
        updated_at=bindparam("updated_at", type_=_BatchTime()),
    ),
    stored_order=("dataset_id", "subject_key", "version", "data", "updated_at"),
)  # fmt: skip
_UPDATE_RECORDS = DirectWrite(
    update(_records)
    .where(
        _records.c.dataset_id == bindparam("b_dataset_id"),
        _records.c.subject_key == bindparam("b_subject_key"),
    )
    .values(
        version=bindparam("version"), data=bindparam("data"),
        updated_at=bindparam("updated_at", type_=_BatchTime()),
    ),
    stored_order=("version", "data", "updated_at", "b_dataset_id", "b_subject_key"),
)  # fmt: skip
_INSERT_VERSIONS = DirectWrite(
    insert(_versions).values(
        dataset_id=bindparam("dataset_id"), subject_key=bindparam("subject_key"),
        version=bindparam("version"), data=bindparam("data"),
        dataset_version=bindparam("dataset_version"), import_id=bindparam("import_id"),
        created_at=bindparam("created_at", type_=_BatchTime()),
    ),
    stored_order=("dataset_id", "subject_key", "version", "data", "dataset_version",
                  "import_id", "created_at"),
)  # fmt: skip


async def history(
    session: AsyncSession, *, dataset_id: str, subject_key: str, after: int | None, limit: int
) -> Sequence[HostedRecordVersion]:
    """A subject's record versions, newest first, before the cursor."""
    statement = (
        select(HostedRecordVersion)
        .where(
            HostedRecordVersion.dataset_id == dataset_id,
            HostedRecordVersion.subject_key == subject_key,
        )
        .order_by(HostedRecordVersion.version.desc())
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(HostedRecordVersion.version < after)
    result = await session.execute(statement)
    return result.scalars().all()


async def page(
    session: AsyncSession, *, dataset_id: str, after: str | None, limit: int
) -> Sequence[tuple[str, str]]:
    """``(subject_key, data)`` of current records in key order, after the cursor."""
    statement = (
        select(HostedRecord.subject_key, HostedRecord.data)
        .where(HostedRecord.dataset_id == dataset_id)
        .order_by(HostedRecord.subject_key)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(HostedRecord.subject_key > after)
    rows = await session.execute(statement)
    return [(key, data) for key, data in rows]


async def update_import(session: AsyncSession, *, import_id: str, values: dict[str, Any]) -> None:
    """Record an import's progress."""
    await session.execute(update(RecordImport).where(RecordImport.id == import_id).values(values))


def add_import(session: AsyncSession, record_import: RecordImport) -> None:
    """Stage a new import."""
    session.add(record_import)

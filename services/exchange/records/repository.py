"""Every query about hosted records, their versions and imports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from libs.common.database import DirectRead
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


async def insert_records(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert new current records, many at once."""
    await _insert_many(session, HostedRecord.__table__, rows)


async def _insert_many(session: AsyncSession, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    # Core executemany on the session's connection: the ORM's bulk insert costs as much again
    # per row in bookkeeping these plain rows do not need.
    if rows:
        connection = await session.connection()
        await connection.execute(insert(table), list(rows))


async def update_records(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Replace current records (``b_dataset_id``, ``b_subject_key`` name the row), many at once."""
    if not rows:
        return
    table = HostedRecord.__table__
    assert isinstance(table, Table)
    statement = (
        update(table)
        .where(
            table.c.dataset_id == bindparam("b_dataset_id"),
            table.c.subject_key == bindparam("b_subject_key"),
        )
        .values(
            version=bindparam("version"), data=bindparam("data"), updated_at=bindparam("updated_at")
        )
    )
    # Core executemany on the session's connection: the ORM's bulk UPDATE wants primary keys
    # under their own names, which the SET clause cannot share.
    connection = await session.connection()
    await connection.execute(statement, list(rows))


async def insert_versions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append record versions, many at once."""
    await _insert_many(session, HostedRecordVersion.__table__, rows)


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

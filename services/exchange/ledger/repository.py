"""Every query of the access ledger's writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import DirectWrite, dialect_insert
from services.exchange.ledger.chain import CONTENT_COLUMNS, GENESIS_HASH
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

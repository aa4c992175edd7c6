"""Every query of the event backbone: outbox, inbox and dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from libs.common.database import DirectWrite
from libs.common.events.tables import TABLES

_outbox = TABLES.outbox
_inbox = TABLES.inbox
_dead_letter = TABLES.dead_letter

# Any constant works: each service has its own database, so the key only has to be fixed.
RELAY_LOCK_KEY = 0x70696E67_74616930  # "pingtai0"
# Event ids looked up in the inbox per statement (well below both backends' parameter limits).
INBOX_CHUNK = 1000
_KNOWN_IDS = select(_inbox.c.event_id).where(
    _inbox.c.consumer == bindparam("consumer"),
    _inbox.c.event_id.in_(bindparam("ids", expanding=True)),
)
# A transaction's events go straight to the driver in one greenlet trip: through
# ``session.execute`` (cache key, execution context, parameter processing) adding them cost
# ≈ 50-80 µs of CPU a call more (docs/events.md). ``inline``: no RETURNING of the positions.
OUTBOX_COLUMNS = ("event_id", "subject", "ordering_key", "payload", "headers", "created_at")
_ADD_TO_OUTBOX = DirectWrite(insert(_outbox).inline(), column_keys=OUTBOX_COLUMNS)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An event waiting in the outbox, as the relay publishes it."""

    position: int
    event_id: str
    subject: str
    ordering_key: str
    payload: bytes
    headers: str


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def add_to_outbox(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert events (every one of ``OUTBOX_COLUMNS``) into the outbox in the session's
    transaction (begun if it was not)."""

    def insert_rows(sync_session: Session) -> None:
        _ADD_TO_OUTBOX.execute_many(sync_session.connection(), rows)

    await session.run_sync(insert_rows)


def add_to_outbox_on(connection: Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert events (every one of ``OUTBOX_COLUMNS``) into the outbox in ``connection``'s
    open transaction (sync, inside a greenlet)."""
    _ADD_TO_OUTBOX.execute_many(connection, rows)


async def try_lock_relay(session: AsyncSession) -> bool:
    """Become the one relay of this database until the transaction ends (PostgreSQL).

    Only one relay publishes at a time, so no row is published by two replicas and the order of
    the outbox is the order of the stream. SQLite has no such lock: the relays of several worker
    processes on one file may publish the same row, which JetStream drops by its Nats-Msg-Id
    (and consumers' inboxes would), and each publishes a key's events in order, each after the
    earlier ones are stored, so the stream's order holds (docs/operations.md, workers).
    """
    if _dialect(session) != "postgresql":
        return True
    result = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY}
    )
    return bool(result.scalar_one())


# The relay's statements, built once: a round (up to a hundred a second in a busy part) built
# them again each time, a quarter of its CPU.
_PENDING = (
    select(
        _outbox.c.position,
        _outbox.c.event_id,
        _outbox.c.subject,
        _outbox.c.ordering_key,
        _outbox.c.payload,
        _outbox.c.headers,
    )
    .where(_outbox.c.sent_at.is_(None))
    .order_by(_outbox.c.position)
    .limit(bindparam("limit", type_=Integer()))
)
_MARK_SENT = (
    update(_outbox)
    .where(_outbox.c.position.in_(bindparam("positions", expanding=True)))
    .values(sent_at=bindparam("at", type_=_outbox.c.sent_at.type))
)


async def pending_events(session: AsyncSession, *, limit: int) -> list[OutboxRow]:
    """The oldest events not yet sent, in the order they were added."""
    result = await session.execute(_PENDING, {"limit": limit})
    return [OutboxRow(*row) for row in result.all()]


async def mark_sent(session: AsyncSession, *, positions: Sequence[int], at: datetime) -> None:
    """Record that JetStream acknowledged these events."""
    if not positions:
        return
    await session.execute(_MARK_SENT, {"positions": list(positions), "at": at})


async def count_pending(session: AsyncSession) -> int:
    """How many events wait in the outbox."""
    result = await session.execute(
        select(func.count()).select_from(_outbox).where(_outbox.c.sent_at.is_(None))
    )
    return int(result.scalar_one())


async def prune_sent(session: AsyncSession, *, sent_before: datetime) -> int:
    """Delete events sent before ``sent_before``; returns how many."""
    result = await session.execute(
        delete(_outbox).where(_outbox.c.sent_at.is_not(None), _outbox.c.sent_at < sent_before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def prune_inbox(session: AsyncSession, *, handled_before: datetime) -> int:
    """Forget handled event ids older than ``handled_before``; returns how many."""
    result = await session.execute(delete(_inbox).where(_inbox.c.handled_at < handled_before))
    return int(getattr(result, "rowcount", 0) or 0)


async def record_handled(
    session: AsyncSession, *, consumer: str, event_ids: Sequence[str], at: datetime
) -> set[str]:
    """Record ``event_ids`` as handled by ``consumer``; returns those not handled before.

    One read of the ids already recorded, then one insert of the others: both statements are
    compiled once and reused (an ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` is compiled
    again on every call). Should another transaction record one of the ids in between, this
    insert fails on the primary key and the caller's transaction rolls back: the event is then
    seen as handled, never applied twice.
    """
    ids = list(dict.fromkeys(event_ids))
    known: set[str] = set()
    for start in range(0, len(ids), INBOX_CHUNK):
        result = await session.execute(
            _KNOWN_IDS, {"consumer": consumer, "ids": ids[start : start + INBOX_CHUNK]}
        )
        known.update(result.scalars())
    fresh = [e for e in ids if e not in known]
    if fresh:
        await session.execute(
            insert(_inbox),
            [{"consumer": consumer, "event_id": e, "handled_at": at} for e in fresh],
        )
    return set(fresh)


async def add_dead_letter(
    session: AsyncSession,
    *,
    consumer: str,
    event_id: str,
    subject: str,
    deliveries: int,
    reason: str,
    payload: bytes,
    at: datetime,
) -> None:
    """Record an event a consumer gave up on, and why."""
    await session.execute(
        insert(_dead_letter).values(
            consumer=consumer,
            event_id=event_id,
            subject=subject,
            deliveries=deliveries,
            reason=reason,
            payload=payload,
            created_at=at,
        )
    )


async def dead_letters(session: AsyncSession, *, consumer: str) -> list[dict[str, Any]]:
    """A consumer's dead letters, oldest first."""
    result = await session.execute(
        select(_dead_letter).where(_dead_letter.c.consumer == consumer).order_by(_dead_letter.c.id)
    )
    return [dict(row) for row in result.mappings().all()]

"""A small publishing and consuming part for the event tests (also run as a subprocess)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from pydantic_settings import SettingsConfigDict
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import Database, new_metadata
from libs.common.events import CloudEvent, EventData, define_event_tables, new_event, outbox
from libs.common.settings import PartSettings

PART = "ledger"
SUBJECT = "pingtai.ledger.thing.happened"
DURABLE = "ledger-projection"

metadata: MetaData = new_metadata()
tables = define_event_tables(metadata)
# The publisher's change: each row is one change recorded with its event.
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("aggregate", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
)
# The consumer's state: one row per application of an event (no unique key, so a second
# application of the same event would show up as a second row).
applied = Table(
    "applied",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("aggregate", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
)


class LedgerSettings(PartSettings):
    """A part that exists only in these tests."""

    part: ClassVar[str] = PART

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_LEDGER_", extra="ignore", populate_by_name=True
    )


def ledger_settings(**overrides: Any) -> LedgerSettings:
    """Settings fast enough for tests; ``overrides`` win."""
    values: dict[str, Any] = {
        "events_retry_delay_s": 0.05,
        "events_relay_poll_s": 0.5,
        **overrides,
    }
    return LedgerSettings(**values)


class ThingHappened(EventData):
    event_type: ClassVar[str] = SUBJECT

    aggregate: str
    seq: int


async def create_schema(database: Database) -> None:
    """Create the test tables (events, things, applied)."""
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


async def record_change(session: AsyncSession, *, aggregate: str, seq: int) -> CloudEvent:
    """One change and its event, in the session's transaction."""
    await session.execute(insert(things).values(aggregate=aggregate, seq=seq))
    event = new_event(ThingHappened(aggregate=aggregate, seq=seq), subject=aggregate)
    await outbox.add(session, event)
    return event


async def commit_changes(
    database: Database, *, count: int, aggregates: int = 10, per_transaction: int = 1
) -> list[CloudEvent]:
    """Commit ``count`` changes spread round-robin over ``aggregates`` aggregates."""
    events: list[CloudEvent] = []
    for start in range(0, count, per_transaction):
        async with database.sessionmaker() as session, session.begin():
            for n in range(start, min(start + per_transaction, count)):
                events.append(
                    await record_change(
                        session, aggregate=f"a{n % aggregates}", seq=n // aggregates
                    )
                )
    return events


async def apply_thing(session: AsyncSession, event: CloudEvent) -> None:
    """The consumer's handler: record one application of the event."""
    thing = event.data_as(ThingHappened)
    await session.execute(
        insert(applied).values(event_id=event.id, aggregate=thing.aggregate, seq=thing.seq)
    )


async def applied_rows(database: Database) -> list[tuple[str, str, int]]:
    """(event id, aggregate, seq) of every application, in the order they were applied."""
    async with database.sessionmaker() as session:
        result = await session.execute(
            select(applied.c.event_id, applied.c.aggregate, applied.c.seq).order_by(applied.c.id)
        )
        return [(e, a, s) for e, a, s in result.all()]


async def count_rows(database: Database, table: Table) -> int:
    """How many rows ``table`` holds."""
    async with database.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Wait until ``check()`` is true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

"""Fixtures of the SLA tests: a migrated database and timers (replicas) on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import select

from libs.common.database import Database
from libs.common.events.tables import TABLES
from services.workflow.sla import calendar as sla_calendar
from services.workflow.sla.service import ReminderPolicy
from tests.conftest import migrated


@pytest.fixture(autouse=True)
def _packaged_calendar() -> Iterator[None]:
    """Each test starts and ends with the packaged calendar and a one-day reminder."""
    sla_calendar.CALENDAR.replace([])
    ReminderPolicy.working_days = 1
    yield
    sla_calendar.CALENDAR.replace([])
    ReminderPolicy.working_days = 1


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """The test database, migrated to workflow's head."""
    await asyncio.to_thread(migrated, "services.workflow", database_url)
    return database_url


@pytest.fixture
async def database(migrated_url: str) -> AsyncIterator[Database]:
    db = Database(migrated_url)
    try:
        yield db
    finally:
        await db.dispose()


async def sla_events(database: Database) -> list[tuple[str, str]]:
    """(type, subject) of the SLA events in the outbox, oldest first."""
    async with database.sessionmaker() as session:
        rows = await session.execute(
            select(TABLES.outbox.c.subject, TABLES.outbox.c.payload)
            .where(TABLES.outbox.c.subject.like("pingtai.workflow.sla.%"))
            .order_by(TABLES.outbox.c.position)
        )
        return [(r[0], r[1].decode()) for r in rows]

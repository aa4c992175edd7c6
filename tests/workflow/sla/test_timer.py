"""The SLA timer: each reminder and overdue raised exactly once, across replicas and restarts."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from libs.common.database import Database
from services.workflow.app import create_app
from services.workflow.ids import as_utc, utcnow
from services.workflow.settings import WorkflowSettings
from services.workflow.sla import due_after, start_clock, stop_clock
from services.workflow.sla import repository as sla_repository
from services.workflow.sla.models import SlaClock
from services.workflow.sla.timer import SlaTimer
from tests.workflow.sla.conftest import sla_events


async def start(database: Database, ref_id: str, *, due_at: datetime, kind: str = "task") -> None:
    async with database.sessionmaker() as session:
        await start_clock(
            session,
            kind=kind,
            ref_id=ref_id,
            application_id=f"app-{ref_id}",
            department_org_id="dept-1",
            due_at=due_at,
        )
        await session.commit()


async def clock(database: Database, ref_id: str, kind: str = "task") -> SlaClock:
    async with database.sessionmaker() as session:
        found = await sla_repository.get_clock(session, kind=kind, ref_id=ref_id)
        assert found is not None
        return found


async def test_two_replicas_raise_each_overdue_exactly_once(
    database: Database, migrated_url: str
) -> None:
    past = utcnow() - timedelta(minutes=1)
    for n in range(60):
        await start(database, f"t{n}", due_at=past)
    await start(database, "later", due_at=utcnow() + timedelta(days=30))
    replica = Database(migrated_url)  # a second replica: its own engine and connections
    try:
        timers = [SlaTimer(database, batch=7), SlaTimer(replica, batch=7)]
        raised = await asyncio.gather(*(t.tick() for t in timers for _ in range(3)))
    finally:
        await replica.dispose()
    events = await sla_events(database)
    overdue = [json.loads(p)["data"]["ref_id"] for t, p in events if t.endswith(".overdue")]
    assert sum(raised) == 60
    assert sorted(overdue) == sorted(f"t{n}" for n in range(60))  # each once, "later" not
    assert [t for t, _ in events if not t.endswith(".overdue")] == []  # no reminders: past due
    # Further ticks raise nothing more.
    assert await SlaTimer(database).tick() == 0
    assert len(await sla_events(database)) == 60


async def test_the_overdue_event_says_which_clock_and_deadline(database: Database) -> None:
    due = utcnow() - timedelta(seconds=5)
    await start(database, "task-1", due_at=due, kind="task")
    assert await SlaTimer(database).tick() == 1
    [(kind, payload)] = await sla_events(database)
    event = json.loads(payload)
    assert kind == event["type"] == "pingtai.workflow.sla.overdue"
    assert event["subject"] == "app-task-1"
    data = event["data"]
    assert data["kind"] == "task" and data["ref_id"] == "task-1"
    assert data["application_id"] == "app-task-1" and data["department_org_id"] == "dept-1"
    assert data["round"] == 1
    assert datetime.fromisoformat(data["due_at"].replace("Z", "+00:00")) == due
    assert (await clock(database, "task-1")).overdue_raised_at is not None


async def test_a_stopped_clock_raises_nothing(database: Database) -> None:
    await start(database, "done", due_at=utcnow() - timedelta(seconds=1))
    async with database.sessionmaker() as session:
        await stop_clock(session, kind="task", ref_id="done")
        await stop_clock(session, kind="task", ref_id="never-started")  # nothing to stop
        await session.commit()
    assert await SlaTimer(database).tick() == 0
    assert await sla_events(database) == []


async def test_reminder_before_the_deadline_then_overdue(database: Database) -> None:
    submitted = datetime.fromisoformat("2099-11-27T10:00:00+08:00")  # a Friday, no holidays data
    due = due_after(submitted, 3)  # end of Wednesday 12-02
    await start(database, "t", due_at=due)
    remind_at = as_utc((await clock(database, "t")).remind_at)  # type: ignore[arg-type]
    assert remind_at == datetime.fromisoformat("2099-12-02T00:00:00+08:00")  # 1 working day before

    assert await SlaTimer(database, now=lambda: remind_at - timedelta(seconds=1)).tick() == 0
    assert await SlaTimer(database, now=lambda: remind_at + timedelta(seconds=1)).tick() == 1
    assert await SlaTimer(database, now=lambda: remind_at + timedelta(hours=1)).tick() == 0
    assert await SlaTimer(database, now=lambda: due + timedelta(seconds=1)).tick() == 1
    types = [t for t, _ in await sla_events(database)]
    assert types == ["pingtai.workflow.sla.reminder", "pingtai.workflow.sla.overdue"]
    reminder = json.loads((await sla_events(database))[0][1])["data"]
    assert reminder["remind_at"].startswith("2099-12-01T16:00:00")


async def test_no_reminder_when_the_deadline_is_already_near(database: Database) -> None:
    await start(database, "t", due_at=due_after(utcnow(), 0))
    assert (await clock(database, "t")).remind_at is None


async def test_a_restarted_clock_is_a_new_round_with_its_own_overdue(database: Database) -> None:
    await start(database, "t", due_at=utcnow() - timedelta(seconds=1))
    assert await SlaTimer(database).tick() == 1
    await start(database, "t", due_at=utcnow() - timedelta(seconds=1))  # e.g. after a supplement
    assert await SlaTimer(database).tick() == 1
    rounds = [json.loads(p)["data"]["round"] for _, p in await sla_events(database)]
    assert rounds == [1, 2]


async def test_a_claim_that_never_committed_is_raised_by_the_next_tick(
    database: Database, migrated_url: str
) -> None:
    # A replica that dies after claiming (its UPDATE and outbox row never commit).
    await start(database, "t", due_at=utcnow() - timedelta(seconds=1))
    crashed = Database(migrated_url)
    async with crashed.sessionmaker() as session:
        [clock_id] = await sla_repository.due_ids(
            session, what="overdue", now=utcnow(), limit=10, skip_locked=False
        )
        assert await sla_repository.claim(session, what="overdue", clock_id=clock_id, now=utcnow())
        await session.rollback()  # the process died: the database rolls the transaction back
    await crashed.dispose()
    assert await SlaTimer(database).tick() == 1
    assert len(await sla_events(database)) == 1


async def test_start_clock_refuses_what_it_cannot_time(database: Database) -> None:
    async with database.sessionmaker() as session:
        with pytest.raises(ValueError, match="kind"):
            await start_clock(
                session, kind="branch", ref_id="x", application_id="a",
                department_org_id=None, due_at=utcnow(),
            )  # fmt: skip
        with pytest.raises(ValueError, match="timezone-aware"):
            await start_clock(
                session, kind="task", ref_id="x", application_id="a",
                department_org_id=None, due_at=datetime(2026, 1, 1),
            )  # fmt: skip


async def test_a_restart_between_the_deadline_and_the_tick_raises_once(
    migrated_url: str, tmp_path: Path
) -> None:
    settings = WorkflowSettings(
        database_url=migrated_url, nats_url=None, var_dir=tmp_path, sla_timer_poll_s=3600
    )
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        database: Database = first.state.database
        # Due after the start-up tick, before the next one (an hour away): nothing raises it.
        await start(database, "t", due_at=utcnow() + timedelta(seconds=0.5))
        await asyncio.sleep(1.0)
        assert await sla_events(database) == []
    # Restarted (one replica, then two at once): the clock's overdue is raised exactly once.
    for _ in range(2):
        apps = [create_app(settings), create_app(settings)]
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):
            for _ in range(50):
                if await sla_events(apps[0].state.database):
                    break
                await asyncio.sleep(0.05)
            events = await sla_events(apps[0].state.database)
    assert [t for t, _ in events] == ["pingtai.workflow.sla.overdue"]
    database = Database(migrated_url)
    try:
        async with database.sessionmaker() as session:
            rows = (await session.execute(select(SlaClock))).scalars().all()
    finally:
        await database.dispose()
    assert len(rows) == 1 and rows[0].overdue_raised_at is not None

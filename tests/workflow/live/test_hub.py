"""The hub reads each history entry once, including those that commit after a later id."""

from __future__ import annotations

import asyncio
import time

from libs.common.database import Database
from services.workflow.applications.models import HistoryEntry
from services.workflow.live.hub import HistoryHub
from services.workflow.live.repository import StreamScope
from tests.workflow.live.conftest import add_application, add_entry


async def drain(queue: asyncio.Queue[HistoryEntry | None]) -> list[int]:
    ids = []
    while not queue.empty():
        entry = queue.get_nowait()
        assert entry is not None
        ids.append(entry.id)
    return ids


async def test_an_id_that_commits_late_is_still_handed_out_once(migrated_url: str) -> None:
    database = Database(migrated_url)
    try:
        application = await add_application(database, applicant_id="alice")
        await add_entry(database, application, applicant_id="alice", entry_id=1)
        hub = HistoryHub(database, gap_grace_s=60)
        await hub.start_at_newest()
        assert hub.high == 1  # what was there before is the streams' replay, not the hub's
        subscriber = hub.subscribe(StreamScope(applicant_id="alice").matches)
        # Ids 2..4 are taken by transactions still running; 5 commits first.
        await add_entry(database, application, applicant_id="alice", entry_id=5)
        assert await hub.read_new() == 1
        assert await drain(subscriber.queue) == [5]
        assert sorted(hub.missing) == [2, 3, 4]
        await add_entry(database, application, applicant_id="alice", entry_id=3)
        await add_entry(database, application, applicant_id="alice", entry_id=6)
        assert await hub.read_new() == 2
        assert await drain(subscriber.queue) == [3, 6]  # the late one too, once
        assert sorted(hub.missing) == [2, 4]
        assert await hub.read_new() == 0
        assert await drain(subscriber.queue) == []
        # Ids never committed (rolled back) are given up after the grace.
        hub.gap_grace_s = 0
        for gap in hub.missing:
            hub.missing[gap] = time.monotonic() - 1
        await hub.read_new()
        assert hub.missing == {}
    finally:
        await database.dispose()


async def test_a_slow_stream_is_ended_not_the_hub(migrated_url: str) -> None:
    database = Database(migrated_url)
    try:
        application = await add_application(database, applicant_id="alice")
        hub = HistoryHub(database)
        await hub.start_at_newest()
        slow = hub.subscribe(StreamScope(applicant_id="alice").matches)
        slow.queue = asyncio.Queue(2)
        fast = hub.subscribe(StreamScope(applicant_id="alice").matches)
        for _ in range(3):
            await add_entry(database, application, applicant_id="alice", with_event=False)
        await hub.read_new()
        assert len(await drain(fast.queue)) == 3
        assert slow not in hub.subscribers
        assert slow.queue.get_nowait() is None  # its stream ends; the client resumes
    finally:
        await database.dispose()


async def test_with_no_stream_the_hub_keeps_its_place_and_gaps_then_hands_out(
    migrated_url: str,
) -> None:
    database = Database(migrated_url)
    try:
        application = await add_application(database, applicant_id="alice")
        hub = HistoryHub(database, gap_grace_s=60)
        await hub.start_at_newest()
        # No stream open: ids only, yet the newest seen and the gap are kept.
        await add_entry(database, application, applicant_id="alice", entry_id=1)
        await add_entry(database, application, applicant_id="alice", entry_id=3)
        assert await hub.read_new() == 2
        assert hub.high == 3
        assert sorted(hub.missing) == [2]
        subscriber = hub.subscribe(StreamScope(applicant_id="alice").matches)
        # The late id and a new one reach the stream opened since; nothing before it does.
        await add_entry(database, application, applicant_id="alice", entry_id=2)
        await add_entry(database, application, applicant_id="alice", entry_id=4)
        assert await hub.read_new() == 2
        assert await drain(subscriber.queue) == [2, 4]
        assert hub.missing == {}
    finally:
        await database.dispose()

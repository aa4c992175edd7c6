"""The outbox without NATS: recording in the change's transaction, waking the relay, pruning."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from libs.common.database import Database
from libs.common.events import outbox, repository
from tests.common.events.harness import commit_changes, count_rows, record_change, things


async def test_events_exist_only_if_their_change_commits(database: Database) -> None:
    wakeup = asyncio.Event()
    forget = outbox.on_commit(wakeup)
    try:
        with pytest.raises(RuntimeError):
            async with database.sessionmaker() as session, session.begin():
                await record_change(session, aggregate="a1", seq=0)
                raise RuntimeError("the change fails")
        assert not wakeup.is_set()

        async with database.sessionmaker() as session, session.begin():
            await record_change(session, aggregate="a1", seq=1)
        assert wakeup.is_set()
    finally:
        forget()

    async with database.sessionmaker() as session:
        pending = await repository.pending_events(session, limit=10)
    assert await count_rows(database, things) == 1
    assert [row.ordering_key for row in pending] == ["pingtai.ledger.thing:a1"]


async def test_sent_events_and_old_inbox_rows_are_pruned(database: Database) -> None:
    events = await commit_changes(database, count=3, per_transaction=3)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    async with database.sessionmaker() as session, session.begin():
        pending = await repository.pending_events(session, limit=10)
        await repository.mark_sent(
            session, positions=[r.position for r in pending[:2]], at=long_ago
        )
        await repository.record_handled(
            session, consumer="c", event_ids=[e.id for e in events[:2]], at=long_ago
        )
        await repository.record_handled(
            session, consumer="c", event_ids=[events[2].id], at=datetime.now(UTC)
        )

    a_day_ago = datetime.now(UTC) - timedelta(days=1)
    async with database.sessionmaker() as session, session.begin():
        pruned = await repository.prune_sent(session, sent_before=a_day_ago)
        forgotten = await repository.prune_inbox(session, handled_before=a_day_ago)
    async with database.sessionmaker() as session, session.begin():
        left = await repository.pending_events(session, limit=10)
        again = await repository.record_handled(
            session, consumer="c", event_ids=[e.id for e in events], at=datetime.now(UTC)
        )

    assert (pruned, forgotten) == (2, 2)
    assert [row.event_id for row in left] == [events[2].id]
    assert again == {events[0].id, events[1].id}

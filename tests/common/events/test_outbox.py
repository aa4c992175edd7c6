"""The outbox without NATS: recording in the change's transaction, waking the relay, pruning."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate

from libs.common.database import Database
from libs.common.events import new_event, outbox, repository
from tests.common.events.harness import (
    SUBJECT,
    ThingHappened,
    commit_changes,
    count_rows,
    record_change,
    things,
)


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


async def test_events_added_together_are_stored_in_order_with_the_trace_of_the_change(
    database: Database,
) -> None:
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = propagate.extract({"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"})
    events = [new_event(ThingHappened(aggregate="a2", seq=seq), subject="a2") for seq in range(3)]
    token = otel_context.attach(parent)
    try:
        async with database.sessionmaker() as session, session.begin():
            await outbox.add_all(session, events)
            await outbox.add(session, new_event(ThingHappened(aggregate="a3", seq=0), subject="a3"))
    finally:
        otel_context.detach(token)

    async with database.sessionmaker() as session:
        pending = await repository.pending_events(session, limit=10)
    assert [row.event_id for row in pending[:3]] == [e.id for e in events]
    assert [row.payload for row in pending[:3]] == [e.to_json() for e in events]
    assert [row.subject for row in pending] == [SUBJECT] * 4
    assert [row.ordering_key for row in pending] == [*[events[0].ordering_key] * 3,
                                                     "pingtai.ledger.thing:a3"]  # fmt: skip
    assert pending[0].position < pending[1].position < pending[2].position < pending[3].position
    for row in pending:
        assert json.loads(row.headers)["traceparent"].split("-")[1] == caller_trace


async def test_events_added_on_a_connection_exist_only_if_its_transaction_commits(
    database: Database,
) -> None:
    events = [new_event(ThingHappened(aggregate="a4", seq=seq), subject="a4") for seq in range(2)]
    with pytest.raises(RuntimeError):
        async with database.engine.begin() as connection:
            await connection.run_sync(outbox.add_all_on, events[:1])
            raise RuntimeError("the change fails")
    async with database.engine.begin() as connection:
        await connection.run_sync(outbox.add_all_on, events[1:])

    async with database.sessionmaker() as session:
        pending = await repository.pending_events(session, limit=10)
    assert [row.event_id for row in pending] == [events[1].id]
    assert [row.payload for row in pending] == [events[1].to_json()]


async def test_wake_relays_sets_every_relay_wakeup_of_the_process() -> None:
    wakeups = [asyncio.Event(), asyncio.Event()]
    forgets = [outbox.on_commit(wakeup) for wakeup in wakeups]
    forgets.pop()()  # the second relay stopped
    try:
        outbox.wake_relays()
    finally:
        for forget in forgets:
            forget()
    assert [wakeup.is_set() for wakeup in wakeups] == [True, False]

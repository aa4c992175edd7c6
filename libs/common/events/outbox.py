"""The transactional outbox: events recorded in the same transaction as the change they report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from libs.common.events import repository
from libs.common.events.envelope import CloudEvent, check_event_type, trace_headers

# Set on a session that added events; its commit wakes the relays of this process.
_ADDED_EVENTS = "pingtai_events_added"

_wakeups: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


async def add(session: AsyncSession, event: CloudEvent) -> None:
    """Record ``event`` in the outbox; it is published once the session's transaction commits."""
    await add_all(session, [event])


async def add_all(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """Record several events in the outbox, in order, in the session's transaction."""
    if not events:
        return
    await repository.add_to_outbox(session, rows=_rows(events))
    session.info[_ADDED_EVENTS] = True


def add_all_on(connection: Connection, events: Sequence[CloudEvent]) -> None:
    """Record several events in the outbox, in order, in ``connection``'s transaction (sync,
    inside a greenlet: for a writer that runs its whole transaction in one trip without a
    session). No session's commit wakes the relays then: call ``wake_relays`` once that
    transaction has committed."""
    if events:
        repository.add_to_outbox_on(connection, rows=_rows(events))


def _rows(events: Sequence[CloudEvent]) -> list[dict[str, Any]]:
    # The trace of the change (e.g. the HTTP request) continues in every consumer.
    headers = json.dumps(trace_headers())
    now = datetime.now(UTC)
    return [
        {
            "event_id": e.id,
            "subject": check_event_type(e.type),
            "ordering_key": e.ordering_key,
            "payload": e.to_json(),
            "headers": headers,
            "created_at": now,
        }
        for e in events
    ]


def on_commit(wakeup: asyncio.Event) -> Callable[[], None]:
    """Set ``wakeup`` whenever a session of this process commits events; returns an undo."""
    entry = (asyncio.get_running_loop(), wakeup)
    _wakeups.add(entry)
    return lambda: _wakeups.discard(entry)


def wake_relays() -> None:
    """Wake this process's relays: events were committed (a session's commit does it itself)."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for loop, wakeup in list(_wakeups):
        if loop is running:
            wakeup.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(wakeup.set)


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_ADDED_EVENTS, False):
        wake_relays()


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_ADDED_EVENTS, None)

"""Processes that die at the worst moment, for the crash tests.

python -m tests.common.events.worker relay-dies-before-marking <database-url> <nats-url>
python -m tests.common.events.worker consumer-dies-in-handler <database-url> <nats-url> <marker>
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import Database
from libs.common.events import CloudEvent, EventBus, Subscription, repository
from libs.common.events.connection import NatsLink
from libs.common.events.relay import OutboxRelay
from tests.common.events.harness import DURABLE, PART, SUBJECT, apply_thing, ledger_settings

RUN_FOR_AT_MOST_S = 60.0


def _die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def relay_dies_before_marking(database_url: str, nats_url: str) -> None:
    """Publish the whole outbox, then die before the rows are marked sent."""
    database = Database(database_url)
    link = NatsLink(url=nats_url, name="doomed-relay")
    stop = asyncio.Event()
    await link.run(stop)
    repository.mark_sent = _die  # type: ignore[assignment]
    relay = OutboxRelay(part=PART, link=link, sessionmaker=database.sessionmaker, batch=5000)
    await relay.relay_once()


async def consumer_dies_in_handler(database_url: str, nats_url: str, marker: str) -> None:
    """Consume; the first event handled kills the process before its transaction commits."""

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        await apply_thing(session, event)
        await session.flush()
        if not Path(marker).exists():
            Path(marker).write_text(event.id)
            _die()

    settings = ledger_settings(nats_url=nats_url, events_ack_wait_s=1.0)
    bus = EventBus(
        settings, subscriptions=[Subscription(durable=DURABLE, subjects=[SUBJECT], handler=handler)]
    )
    database = Database(database_url)
    async with bus.running(database):
        await asyncio.sleep(RUN_FOR_AT_MOST_S)


def main(argv: list[str]) -> None:
    role, *args = argv
    if role == "relay-dies-before-marking":
        work = relay_dies_before_marking(*args)
    elif role == "consumer-dies-in-handler":
        work = consumer_dies_in_handler(*args)
    else:
        raise SystemExit(f"unknown role {role!r}")
    asyncio.run(asyncio.wait_for(work, RUN_FOR_AT_MOST_S))


if __name__ == "__main__":
    main(sys.argv[1:])

"""How a durable consumer takes a fetch that ends without events (no NATS needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
import nats.js.errors
import pytest
import structlog
from structlog.testing import capture_logs

from libs.common.database import Database
from libs.common.events import Subscription, consumers
from libs.common.events.consumers import ConsumerOptions, ConsumerRunner
from tests.common.events.harness import DURABLE, SUBJECT, apply_thing


class ScriptedSubscription:
    """A pull subscription whose fetches raise the given errors in turn, then stop the runner."""

    def __init__(self, stop: asyncio.Event, errors: list[Exception]) -> None:
        self.stop = stop
        self.errors = errors
        self.fetches = 0
        self.unsubscribed = 0

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        self.fetches += 1
        error = self.errors.pop(0)
        if not self.errors:
            self.stop.set()
        raise error

    async def unsubscribe(self) -> None:
        self.unsubscribed += 1


class ReadyLink:
    """A link that is connected as far as the runner can tell."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()


@pytest.fixture(autouse=True)
def _fresh_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    # A logger bound by an earlier test's logging configuration would bypass capture_logs.
    monkeypatch.setattr(consumers, "log", structlog.get_logger("pingtai.events.consumer"))


async def _pull_through(database: Database, errors: list[Exception]) -> tuple[Any, list[Any]]:
    stop = asyncio.Event()
    runner = ConsumerRunner(
        part="ledger",
        subscription=Subscription(durable=DURABLE, subjects=[SUBJECT], handler=apply_thing),
        link=ReadyLink(),  # type: ignore[arg-type]
        sessionmaker=database.sessionmaker,
        options=ConsumerOptions(),
    )
    subscription = ScriptedSubscription(stop, errors)
    runner._subscription = subscription  # type: ignore[assignment]
    with capture_logs() as logs:
        await asyncio.wait_for(runner._pull(stop), timeout=10)
    return subscription, logs


async def test_fetch_timeouts_of_every_kind_leave_the_subscription_bound(
    database: Database,
) -> None:
    # nats-py ends an empty fetch with asyncio's TimeoutError when the server's "request
    # timeout" answer arrives just before the client's own deadline, else with its own errors.
    subscription, logs = await _pull_through(
        database,
        [
            TimeoutError(),  # asyncio.TimeoutError is the builtin
            nats.js.errors.FetchTimeoutError(),
            nats.errors.TimeoutError(),
            TimeoutError(),  # asyncio.TimeoutError is the builtin
        ],
    )

    assert subscription.fetches == 4
    assert subscription.unsubscribed == 0
    assert [entry for entry in logs if entry["event"] == "consumer_fetch_failed"] == []


async def test_a_fetch_that_fails_otherwise_binds_again(database: Database) -> None:
    subscription, logs = await _pull_through(database, [nats.js.errors.ServiceUnavailableError()])

    assert subscription.unsubscribed == 1
    assert [entry["event"] for entry in logs] == ["consumer_fetch_failed"]

"""Fixtures of the event tests: a real nats-server on free ports and a ledger database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from libs.common.database import Database
from pingtai.natsserver import NatsServer
from tests.common.events.harness import create_schema


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server with JetStream, stopped after the test."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The ledger's database (SQLite, and PostgreSQL when configured) with its tables."""
    db = Database(database_url)
    await create_schema(db)
    try:
        yield db
    finally:
        await db.dispose()

"""Ledgers on a migrated exchange database, and helpers to tamper with it in SQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from libs.common.database import Database
from services.exchange.ledger import AccessRecord, Ledger, LedgerConfig
from services.exchange.ledger.anomaly import AnomalyDetector
from services.exchange.ledger.signing import CheckpointSigner, derive_development_key
from tests.conftest import migrated

SIGNER = CheckpointSigner(derive_development_key("ledger-tests"))

MakeLedger = Callable[..., Awaitable[Ledger]]


def record(n: int = 0, **changes: Any) -> AccessRecord:
    """A plausible access; ``n`` varies the subject and the request."""
    values: dict[str, Any] = {
        "actor": "person-17",
        "client_id": "client-civil-affairs",
        "actor_org_id": "org-civil-affairs",
        "dataset_id": "ds-household",
        "owner_org_id": "org-public-security",
        "subject_ref": f"{n:064x}",
        "fields": ("name", "address"),
        "purpose": "开办企业 application",
        "basis_kind": "application",
        "basis_ref": f"APP-{n}",
        "outcome": "granted",
        "request_id": f"req-{n}",
    }
    values.update(changes)
    return AccessRecord(**values)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    await asyncio.to_thread(migrated, "services.exchange", database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def make_ledger(database: Database) -> AsyncIterator[MakeLedger]:
    """Start ledgers on the test database (each its own engine, like a replica, if asked)."""
    started: list[tuple[Ledger, Database | None]] = []

    async def make(
        *,
        own_engine: bool = False,
        signer: CheckpointSigner = SIGNER,
        anomaly: AnomalyDetector | None = None,
        **config: Any,
    ) -> Ledger:
        db = Database(database.url) if own_engine else database
        ledger = Ledger(db, signer=signer, config=LedgerConfig(**config), anomaly=anomaly)
        await ledger.start()
        started.append((ledger, db if own_engine else None))
        return ledger

    yield make
    for ledger, own in reversed(started):
        await ledger.close()
        if own is not None:
            await own.dispose()


async def execute(database: Database, sql: str, **params: Any) -> None:
    """Run one statement in its own committed transaction (tampering, as an intruder would)."""
    async with database.engine.begin() as conn:
        await conn.execute(text(sql), params)


async def fetch(database: Database, sql: str, **params: Any) -> list[Any]:
    """Rows of a query."""
    async with database.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())

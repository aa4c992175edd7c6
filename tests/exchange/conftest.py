"""The exchange app in process, on a migrated database, with a test issuer's tokens.

Fixtures for every exchange test: ``exchange_app``, ``client`` (anonymous; pass ``headers=``),
``issuer`` (signs tokens: ``issuer.headers(roles=["dept_admin"], org=...)``), and
``outbox_types`` / ``outbox_events`` to read which events a test caused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy import select

from libs.common.auth import JwksCache, TokenVerifier
from libs.common.events.tables import TABLES
from services.exchange.app import create_app
from services.exchange.settings import ExchangeSettings
from tests.conftest import migrated
from tests.identity.conftest import ISSUER, Issuer

__all__ = ["ISSUER", "Issuer", "connections_held_while_appending", "outbox_events", "outbox_types"]


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return Issuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
async def exchange_app(database_url: str, issuer: Issuer) -> AsyncIterator[FastAPI]:
    await asyncio.to_thread(migrated, "services.exchange", database_url)
    settings = ExchangeSettings(database_url=database_url, issuer=ISSUER, nats_url=None)
    app = create_app(settings)
    jwks = issuer.jwks()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache("http://jwks.test/jwks.json", client=httpx.AsyncClient(transport=transport)),
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(exchange_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(exchange_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as client:
        yield client


async def outbox_types(app: FastAPI) -> list[str]:
    """The types of the events the app recorded in its outbox, oldest first."""
    async with app.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(TABLES.outbox.c.subject).order_by(TABLES.outbox.c.position)
        )
        return [r[0] for r in rows]


async def outbox_events(app: FastAPI) -> list[tuple[str, dict[str, Any]]]:
    """Each recorded event's type and data, oldest first."""
    async with app.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(TABLES.outbox.c.subject, TABLES.outbox.c.payload).order_by(
                TABLES.outbox.c.position
            )
        )
        return [(r[0], json.loads(r[1])["data"]) for r in rows]


@contextmanager
def connections_held_while_appending(app: FastAPI) -> Iterator[list[int]]:
    """The pooled connections checked out each time the app awaits its ledger.

    A request must hold none then: under load, requests waiting for their entries' group
    commit would hold every connection and leave the ledger's writer none to commit with.
    """
    ledger = app.state.ledger
    pool = app.state.database.engine.pool
    held: list[int] = []
    append, append_many = ledger.append, ledger.append_many

    async def counted_append(record: Any, **options: Any) -> Any:
        held.append(pool.checkedout())
        return await append(record, **options)

    async def counted_append_many(records: Any, **options: Any) -> Any:
        held.append(pool.checkedout())
        return await append_many(records, **options)

    ledger.append, ledger.append_many = counted_append, counted_append_many
    try:
        yield held
    finally:
        del ledger.append, ledger.append_many

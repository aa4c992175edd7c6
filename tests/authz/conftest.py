"""Every part started once per backend, in process, each with its world seeded.

The parts are built by the hostile suite's helpers (``tests/hostile/parts.py``: the parts' own
settings and a verifier trusting the tests' issuer); workflow runs on the fake exchange its own
tests use, so submitted applications fetch their materials and reach officers' inboxes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from services.workflow.app import create_app as create_workflow
from services.workflow.applications.runtime import build_runtime
from tests.authz.world_catalog import CatalogWorld
from tests.authz.world_evaluation import EvaluationWorld
from tests.authz.world_exchange import ExchangeWorld
from tests.authz.world_gateway import GatewayWorld
from tests.authz.world_identity import IdentityWorld
from tests.authz.world_workflow import WorkflowWorld
from tests.authz.worlds import World
from tests.conftest import BACKENDS, _create_postgres_database, _drop_postgres_database, migrated
from tests.hostile.parts import running
from tests.identity.conftest import Issuer
from tests.workflow.applications.conftest import settings_for, verifier_for
from tests.workflow.helpers import FakeExchange

WORLDS: dict[str, type[World]] = {
    world.part: world
    for world in (
        IdentityWorld, CatalogWorld, ExchangeWorld, WorkflowWorld, EvaluationWorld, GatewayWorld
    )
}  # fmt: skip


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return Issuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@asynccontextmanager
async def _workflow(url: str, issuer: Issuer, folder: Path) -> AsyncIterator[World]:
    """Workflow on the fake exchange of its own tests."""
    await asyncio.to_thread(migrated, "services.workflow", url)
    settings = settings_for(url, str(folder / "workflow"))
    app = create_workflow(settings)
    app.state.token_verifier = verifier_for(issuer)
    exchange = FakeExchange()
    runtime, clients = build_runtime(settings, transport=httpx.MockTransport(exchange.handler()))
    app.state.runtime = runtime
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as http:
                world = WorkflowWorld(app, http, issuer)
                world.exchange = exchange
                yield world
    finally:
        for client in clients:
            await client.close()


@pytest_asyncio.fixture(scope="package", params=BACKENDS, loop_scope="package")
async def worlds(
    request: pytest.FixtureRequest, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, World]]:
    """Every part started and seeded, on SQLite (and PostgreSQL when configured)."""
    folder = tmp_path_factory.mktemp("authz")
    made: list[str] = []
    async with AsyncExitStack() as stack:
        started: dict[str, World] = {}
        for name, kind in WORLDS.items():
            if request.param == "sqlite":
                url = f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
            else:
                url = await _create_postgres_database()
                made.append(url)
            if name == "workflow":
                world = await stack.enter_async_context(_workflow(url, issuer, folder))
            else:
                part = await stack.enter_async_context(running(name, url, issuer))
                world = kind(part.app, part.http, issuer)
            await world.seed()
            started[name] = world
        yield started
    for url in made:
        await _drop_postgres_database(url)

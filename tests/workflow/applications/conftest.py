"""The workflow app with a fake exchange routed in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from libs.common.auth import JwksCache, TokenVerifier
from services.workflow.app import create_app
from services.workflow.applications.runtime import build_runtime
from services.workflow.settings import WorkflowSettings
from tests.conftest import migrated
from tests.workflow.conftest import ISSUER, Issuer
from tests.workflow.helpers import FakeExchange


@pytest.fixture
def exchange() -> FakeExchange:
    return FakeExchange()


def settings_for(database_url: str, tmp: str, **extra: object) -> WorkflowSettings:
    return WorkflowSettings(
        **extra,  # type: ignore[arg-type]
        database_url=database_url, issuer=ISSUER, nats_url=None, client_secret="s3cret",
        uploads_dir=f"{tmp}/uploads", fetch_retry_interval_s=3600, sla_timer_enabled=False,
    )  # fmt: skip


def verifier_for(issuer: Issuer) -> TokenVerifier:
    jwks = issuer.jwks()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    return TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache("http://jwks.test/jwks.json", client=httpx.AsyncClient(transport=transport)),
    )


@pytest.fixture
async def app(
    database_url: str, issuer: Issuer, exchange: FakeExchange, tmp_path: object
) -> AsyncIterator[FastAPI]:
    await asyncio.to_thread(migrated, "services.workflow", database_url)
    settings = settings_for(database_url, str(tmp_path))
    app = create_app(settings)
    app.state.token_verifier = verifier_for(issuer)
    runtime, clients = build_runtime(settings, transport=httpx.MockTransport(exchange.handler()))
    app.state.runtime = runtime
    async with app.router.lifespan_context(app):
        yield app
    for client in clients:
        await client.close()


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as client:
        yield client

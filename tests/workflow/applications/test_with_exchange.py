"""A submission against the real exchange app in process: materials fetched under a grant with
the application as legal basis, recorded in exchange's ledger; what exchange lacks is asked."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from libs.common.migrations import migrate
from services.exchange.app import create_app as create_exchange_app
from services.exchange.settings import ExchangeSettings
from services.workflow.app import create_app
from services.workflow.applications.runtime import build_runtime
from tests.conftest import POSTGRES_URL, _create_postgres_database, _drop_postgres_database
from tests.exchange.access.conftest import HRSS, NOBODY_ID, PEOPLE, ZHANG, ZHANG_ID, World, world
from tests.workflow.applications.conftest import settings_for, verifier_for
from tests.workflow.conftest import ISSUER, Issuer
from tests.workflow.helpers import Item, publish_item

__all__ = ["world"]  # the exchange's province, as its own tests build it


@pytest.fixture
async def exchange_database(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second database, on the same backend, for the exchange."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'exchange.db'}"
        return
    assert POSTGRES_URL
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest.fixture
async def exchange_app(exchange_database: str, issuer: Issuer) -> AsyncIterator[FastAPI]:
    await asyncio.to_thread(migrate, "services.exchange", exchange_database)
    app = create_exchange_app(
        ExchangeSettings(database_url=exchange_database, issuer=ISSUER, nats_url=None)
    )
    app.state.token_verifier = verifier_for(issuer)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(exchange_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(exchange_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as client:
        yield client


class _Routes(httpx.AsyncBaseTransport):
    """Identity's token endpoint answered by the test issuer; everything else to the exchange."""

    def __init__(self, exchange_app: FastAPI, token: str) -> None:
        self._exchange = httpx.ASGITransport(exchange_app)
        self._token = token

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": self._token, "expires_in": 300})
        return await self._exchange.handle_async_request(request)


@pytest.fixture
async def workflow(
    database_url: str, issuer: Issuer, exchange_app: FastAPI, tmp_path: Path, world: World
) -> AsyncIterator[FastAPI]:
    await asyncio.to_thread(migrate, "services.workflow", database_url)
    settings = settings_for(database_url, str(tmp_path), exchange_url="http://exchange")
    app = create_app(settings)
    app.state.token_verifier = verifier_for(issuer)
    # Workflow's client-credentials token, as identity gives it: no person, exchange's scope.
    token = issuer.token(sub="client-workflow", roles=[], org=HRSS,
                         scope="exchange:application-basis", acr="")  # fmt: skip
    runtime, clients = build_runtime(settings, transport=_Routes(exchange_app, token))
    app.state.runtime = runtime
    async with app.router.lifespan_context(app):
        yield app
    for made in clients:
        await made.close()


async def test_materials_come_from_the_real_exchange_and_stand_in_its_ledger(
    workflow: FastAPI, world: World, issuer: Issuer
) -> None:
    await world.grant(PEOPLE, HRSS, ["name", "region", "status"])
    item = Item(item_id=uuid.uuid4().hex, owner=HRSS, dataset_id=PEOPLE, code="zj-hrss-test")
    await publish_item(workflow, item)
    form: dict[str, Any] = {"resident_id": ZHANG_ID, "name": "张三丰", "phone": "13800000001"}
    transport = httpx.ASGITransport(workflow)
    async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as api:
        # Zhang applies with his own resident id (exchange knows him from identity's events).
        headers = issuer.headers(sub=ZHANG, roles=["citizen"], acr="2")
        found = await api.post("/v1/applications", json={"item_id": item.item_id, "form": form},
                               headers=headers)  # fmt: skip
        assert found.status_code == 201, found.text
        body = found.json()
        absent = await api.post(
            "/v1/applications",
            json={"item_id": item.item_id, "form": {**form, "resident_id": NOBODY_ID}},
            headers=headers,
        )  # fmt: skip
        assert absent.status_code == 201, absent.text
    assert body["status"] == "in_progress", body["materials"][0]["last_error"]
    [material] = body["materials"]
    assert material["state"] == "fetched"
    assert set(material["record"]) == {"name", "status"}
    assert material["record"]["status"] == "active"
    assert material["record"]["name"] != "张三丰"  # personal: masked by exchange
    ledger = await world.ledger()
    reads = [e for e in ledger if e.basis_ref == body["id"]]
    assert len(reads) == 1
    assert (reads[0].outcome, reads[0].basis_kind, reads[0].actor_org_id) == (
        "granted", "application", HRSS)  # fmt: skip
    assert material["receipt"]["ledger_position"] == reads[0].position
    missing = absent.json()
    assert missing["status"] == "awaiting_materials"
    assert missing["materials"][0]["state"] == "requested"
    # Exchange records the attempt too: someone else's resident id is refused as a subject of
    # Zhang's application, and the applicant is asked for the material instead.
    assert missing["materials"][0]["last_error"] == "exchange refused: not-the-applicant"
    assert [e.basis_kind for e in ledger if e.basis_ref == missing["id"]] == ["application"]

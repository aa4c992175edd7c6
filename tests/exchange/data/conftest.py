"""Datasets in the exchange's copy, made from the catalogue's own event models."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from libs.common.events import CloudEvent, new_event
from services.catalog.datasets.events import DatasetPublished, DatasetRetired
from services.exchange.datasets.consumers import follow_catalogue
from services.exchange.settings import ExchangeSettings
from tests.exchange.conftest import Issuer

OWNER = "a" * 32
OTHER = "b" * 32

ENTERPRISES: dict[str, Any] = {
    "code": "zj-legal-entity-test",
    "owner_org_id": OWNER,
    "name": "法人基础信息",
    "name_en": "Legal entities",
    "description": "",
    "region_code": "330000",
    "fields": [
        {"name": "credit_code", "type": "string", "sensitivity": "public", "description": ""},
        {"name": "entity_name", "type": "string", "sensitivity": "public", "description": ""},
        {"name": "registered_capital", "type": "number", "sensitivity": "public",
         "description": ""},
        {"name": "employees", "type": "integer", "sensitivity": "internal", "description": ""},
        {"name": "established_on", "type": "date", "sensitivity": "public", "description": ""},
        {"name": "listed", "type": "boolean", "sensitivity": "public", "description": ""},
    ],
    "subject_key": {"kind": "credit_code", "field": "credit_code"},
    "share_type": "unconditional",
    "open_type": "open",
    "not_open_reason": None,
    "update_frequency": "daily",
    "hosting": {"mode": "hosted", "endpoint_url": None},
}  # fmt: skip

PEOPLE: dict[str, Any] = {
    "code": "zj-population-test",
    "owner_org_id": OWNER,
    "name": "人口基础信息",
    "name_en": None,
    "description": "",
    "region_code": "330100",
    "fields": [
        {"name": "id_number", "type": "string", "sensitivity": "personal", "description": ""},
        {"name": "name", "type": "string", "sensitivity": "personal", "description": ""},
        {"name": "birth_date", "type": "date", "sensitivity": "sensitive", "description": ""},
        {"name": "registered_at", "type": "datetime", "sensitivity": "internal",
         "description": ""},
    ],
    "subject_key": {"kind": "resident_id", "field": "id_number"},
    "share_type": "conditional",
    "open_type": "not_open",
    "not_open_reason": "涉及个人信息",
    "update_frequency": "daily",
    "hosting": {"mode": "hosted", "endpoint_url": None},
}  # fmt: skip


def definition(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a dataset definition with ``changes``."""
    body = copy.deepcopy(base)
    body.update(changes)
    return body


def published_event(dataset_id: str, body: dict[str, Any], *, version: int = 1) -> CloudEvent:
    """The catalogue's own event for a published version."""
    return new_event(
        DatasetPublished(
            dataset_id=dataset_id,
            code=body["code"],
            owner_org_id=body["owner_org_id"],
            version=version,
            published_at=datetime.now(UTC),
            definition=body,
            published_by="tests",
        ),
        subject=dataset_id,
    )


def retired_event(dataset_id: str, body: dict[str, Any], *, last_version: int) -> CloudEvent:
    """The catalogue's own event for a retirement."""
    return new_event(
        DatasetRetired(
            dataset_id=dataset_id,
            code=body["code"],
            owner_org_id=body["owner_org_id"],
            last_version=last_version,
            retired_at=datetime.now(UTC),
            retired_by="tests",
        ),
        subject=dataset_id,
    )


async def deliver(app: FastAPI, event: CloudEvent) -> None:
    """Run the consumer's handler in a transaction of its own, as the bus does."""
    async with app.state.database.sessionmaker() as session:
        await follow_catalogue(session, event)
        await session.commit()


async def publish(app: FastAPI, body: dict[str, Any], *, version: int = 1) -> str:
    """A new dataset in the exchange's copy; its id."""
    dataset_id = uuid.uuid4().hex
    await deliver(app, published_event(dataset_id, body, version=version))
    return dataset_id


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings a test module changes (override the fixture); read per request."""
    return {}


@pytest.fixture
def data_app(exchange_app: FastAPI, settings_overrides: dict[str, Any]) -> FastAPI:
    """The exchange app, with the module's settings."""
    settings: ExchangeSettings = exchange_app.state.settings
    exchange_app.state.settings = settings.model_copy(update=settings_overrides)
    return exchange_app


@pytest.fixture
async def api(data_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(data_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as client:
        yield client


@pytest.fixture
def owner_headers(issuer: Issuer) -> dict[str, str]:
    return issuer.headers(roles=["dept_admin"], org=OWNER)

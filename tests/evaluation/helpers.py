"""Helpers of the evaluation tests: apply events as the consumers do, read figures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from libs.common.auth import Principal, Role
from libs.common.database import Database
from libs.common.events import CloudEvent
from services.evaluation.index import service as index_service
from services.evaluation.indicators import repository as indicators_repository
from services.evaluation.indicators.contributions import Rules
from services.evaluation.indicators.periods import parse_period
from services.evaluation.indicators.projection import Projection
from tests.identity.conftest import Issuer

RULES = Rules(
    timezone="Asia/Shanghai",
    online_channels=frozenset({"online", "web", "app", "mobile", "mini_program", "self_service"}),
)


async def project(database: Database, events: Sequence[CloudEvent], *, batch: int = 100) -> None:
    """Apply ``events`` in batches, each in its own transaction, as a consumer would."""
    projection = Projection(RULES)
    for start in range(0, len(events), batch):
        async with database.sessionmaker() as session, session.begin():
            await projection(session, events[start : start + batch])


async def stored_ranking(database: Database, period: str = "2026-11") -> str:
    """The departments' ranking for ``period`` as the API answers it (stored if it was not)."""
    evaluator = Principal(
        sub="evaluator", client_id="tests", org=None, roles=frozenset({Role.EVALUATOR}), acr=1,
        scopes=frozenset(), jti="tests", expires_at=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    async with database.sessionmaker() as session, session.begin():
        return await index_service.ranking(
            session=session, engine=database.engine, principal=evaluator, scope_kind="department",
            period=parse_period(period), version=None, region_level="city", keep=10,
        )  # fmt: skip


async def rows(database: Database) -> list[tuple[Any, ...]]:
    """Every non-zero daily and histogram row."""
    async with database.sessionmaker() as session:
        return await indicators_repository.all_rows(session)


def database_of(app: FastAPI) -> Database:
    """The app's database."""
    database: Database = app.state.database
    return database


async def values(
    client: httpx.AsyncClient, issuer: Issuer, scope: str, period: str = "2026-11"
) -> dict[str, Any]:
    """Every indicator of ``scope``, read by an evaluator."""
    response = await client.get(
        "/v1/indicators/values",
        params={"scope": scope, "period": period},
        headers=issuer.headers(roles=["evaluator"]),
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found

"""Stored rankings: what a ranking read answers equals the ranking computed now.

A ranking is stored when first read; new events for a day in its period, a changed
organisation, or a new indicator-system version must never leave a stale one answered.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from libs.common.database import Database
from services.evaluation.index import repository as index_repository
from services.evaluation.index import service as index_service
from services.evaluation.index.models import StoredRanking
from services.evaluation.indicators import repository as indicators_repository
from services.evaluation.indicators.periods import parse_period
from tests.evaluation import scenario
from tests.evaluation.helpers import database_of, project
from tests.evaluation.scenario import D1, D2, D3, ITEM_A, at, event
from tests.evaluation.test_index_and_access import one_indicator_each
from tests.identity.conftest import Issuer


@pytest.fixture
async def loaded(evaluation_app: FastAPI) -> FastAPI:
    await project(database_of(evaluation_app), scenario.all_events())
    return evaluation_app


async def _read(
    client: httpx.AsyncClient, issuer: Issuer, period: str = "2026-11", **params: Any
) -> dict[str, Any]:
    response = await client.get(
        "/v1/rankings",
        params={"period": period, **params},
        headers=issuer.headers(roles=["evaluator"]),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    found: dict[str, Any] = response.json()
    return found


async def _computed(
    database: Database,
    period: str = "2026-11",
    *,
    version: int | None = None,
    scope_kind: str = "department",
    level: str = "city",
) -> dict[str, Any]:
    """The ranking computed from the daily rows now, bypassing what is stored."""
    async with database.sessionmaker() as session:
        chosen = await index_service.system(session=session, version=version)
        ranking = await index_service.compute_ranking(
            session=session, scope_kind=scope_kind, period=parse_period(period), chosen=chosen,
            region_level=level,
        )  # fmt: skip
    found: dict[str, Any] = json.loads(ranking.model_dump_json())
    return found


async def _stored(database: Database) -> list[tuple[str, str, date, date, int]]:
    async with database.sessionmaker() as session:
        rows = await session.execute(
            select(
                StoredRanking.scope_kind, StoredRanking.level, StoredRanking.period_start,
                StoredRanking.period_end, StoredRanking.system_version,
            ).order_by(StoredRanking.id)
        )  # fmt: skip
        return [tuple(r) for r in rows]


def _composites(ranking: dict[str, Any]) -> dict[str, float | None]:
    return {c["scope_id"]: c["composite"] for c in ranking["items"]}


async def test_a_read_stores_the_ranking_and_the_next_read_answers_it(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    database = database_of(loaded)
    assert await _stored(database) == []
    first = await _read(client, issuer)
    assert await _stored(database) == [("department", "", date(2026, 11, 1), date(2026, 11, 30), 0)]
    assert first == await _computed(database)
    assert [c["scope_id"] for c in first["items"]] == sorted(
        (D1, D2, D3), key=lambda d: -(_composites(first)[d] or 0)
    )
    # The second read is the stored row (change the stored text to prove it is what is read).
    async with database.sessionmaker() as session, session.begin():
        row = (await session.execute(select(StoredRanking))).scalar_one()
        row.body = json.dumps({**first, "items": first["items"][:1]})
    assert (await _read(client, issuer))["items"] == first["items"][:1]
    # Regions are stored per level, departments once whatever the level says.
    await _read(client, issuer, level="county")
    await _read(client, issuer, scope_kind="region", level="county")
    await _read(client, issuer, scope_kind="region", level="city")
    assert len(await _stored(database)) == 3
    assert await _read(client, issuer, scope_kind="region", level="city") == await _computed(
        database, scope_kind="region", level="city"
    )


async def test_new_events_forget_the_periods_they_change(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    database = database_of(loaded)
    november = await _read(client, issuer)
    october = await _read(client, issuer, period="2026-10")
    await _read(client, issuer, period="2026-11-20")
    assert len(await _stored(database)) == 3
    # D3 finishes an application of item A on 20 November, late, and it is reviewed 1.
    late = [
        event("workflow.application.submitted",
              {"application_id": "app7", "applicant_id": "citizen-3", "item_id": ITEM_A,
               "item_version": 1, "owner_org_id": D3, "channel": "counter"},
              time=at(12, 1), subject="app7"),
        event("workflow.application.completed",
              {"application_id": "app7", "applicant_id": "citizen-3", "overdue": True},
              time=at(20, 1), subject="app7"),
    ]  # fmt: skip
    await project(database, late)
    # 12 and 20 November changed: the month and the 20th are forgotten, October stays.
    assert await _stored(database) == [("department", "", date(2026, 10, 1), date(2026, 10, 31), 0)]
    after = await _read(client, issuer)
    assert after == await _computed(database)
    assert _composites(after)[D3] != _composites(november)[D3]
    assert await _read(client, issuer, period="2026-10") == october
    # A repeated event changes no figure, so nothing is forgotten.
    before = await _stored(database)
    await project(database, late)
    assert await _stored(database) == before
    assert await _read(client, issuer) == await _computed(database)


async def test_a_renamed_department_forgets_every_ranking(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    database = database_of(loaded)
    await _read(client, issuer)
    await _read(client, issuer, period="2026-10")
    renamed = event(
        "identity.organisation.updated", {"org_id": D2, "name": "杭州市新局"}, time=at(25, 1)
    )
    await project(database, [renamed])
    assert await _stored(database) == []
    after = await _read(client, issuer)
    assert {c["scope_id"]: c["name"] for c in after["items"]}[D2] == "杭州市新局"
    assert after == await _computed(database)


async def test_a_new_weights_version_is_ranked_afresh_and_old_versions_stay(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    database = database_of(loaded)
    admin = issuer.headers(roles=["platform_admin"])
    default = await _read(client, issuer)
    assert default["system_version"] == 0
    for weight in (1, 3):
        created = await client.post(
            "/v1/index-systems", json=one_indicator_each(weight), headers=admin
        )
        assert created.status_code == 201, created.text
        current = await _read(client, issuer)
        assert current["system_version"] == created.json()["version"]
        assert current == await _computed(database)
        assert current == await _computed(database, version=current["system_version"])
    # Governance weighs three times as much in version 2 (worked out in test_index_and_access).
    assert _composites(current)[D1] == pytest.approx(400 / 7)
    assert await _read(client, issuer, system_version=1) == await _computed(database, version=1)
    assert await _read(client, issuer, system_version=0) == default
    assert {v for *_, v in await _stored(database)} == {0, 1, 2}
    # And new events still reach every version's ranking.
    await project(
        database,
        [event("exchange.records.imported",
               {"dataset_id": "ds1", "owner_org_id": D2, "accepted": 5, "rejected": 0},
               time=at(7, 5), subject="ds1")],
    )  # fmt: skip
    assert await _stored(database) == []
    for version in (0, 1, 2):
        read = await _read(client, issuer, system_version=version)
        assert read == await _computed(database, version=version)


async def test_a_ranking_computed_while_a_batch_committed_is_not_stored(
    loaded: FastAPI,
) -> None:
    database = database_of(loaded)
    key = index_repository.RankingKey("department", "", date(2026, 11, 1), date(2026, 11, 30), 0)
    async with database.sessionmaker() as session:
        generation = await indicators_repository.generation(session)
    assert generation is not None
    # A batch commits between the read of the generation and the store.
    await project(
        database,
        [event("workflow.application.submitted",
               {"application_id": "app8", "applicant_id": "citizen-4", "item_id": ITEM_A,
                "item_version": 1, "owner_org_id": D1, "channel": "online"},
               time=at(15, 1), subject="app8")],
    )  # fmt: skip
    async with database.sessionmaker() as session, session.begin():
        stored = await index_repository.store_ranking(
            session, key, body="{}", generation=generation, keep=10
        )
        assert not stored
        assert await index_repository.stored_ranking(database.engine, **key._asdict()) is None
        # With the generation of now it is stored.
        now = await indicators_repository.generation(session)
        assert now == generation + 1
        assert await index_repository.store_ranking(
            session, key, body="{}", generation=now, keep=10
        )
    assert await _stored(database) == [key]


async def test_only_the_newest_rankings_are_kept(evaluation_app: FastAPI) -> None:
    database = database_of(evaluation_app)
    async with database.sessionmaker() as session, session.begin():
        generation = await indicators_repository.generation(session)
        assert generation is not None
        for day in range(1, 8):
            key = index_repository.RankingKey(
                "department", "", date(2026, 11, day), date(2026, 11, day), 0
            )
            assert await index_repository.store_ranking(
                session, key, body="{}", generation=generation, keep=3
            )
        count = await session.execute(select(func.count()).select_from(StoredRanking))
        assert count.scalar_one() == 3
    assert [start.day for _, _, start, _, _ in await _stored(database)] == [5, 6, 7]

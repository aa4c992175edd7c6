"""Every indicator on the hand-made scenario (tests/evaluation/scenario.py), worked out by hand;
duplicates and any order of events give the same figures."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.evaluation.indicators.replay import clear_derived
from tests.evaluation import scenario
from tests.evaluation.helpers import database_of, project, rows, values
from tests.evaluation.scenario import D1, D2, D3, E1, ITEM_A, ITEM_B
from tests.identity.conftest import Issuer


@pytest.fixture
async def loaded(evaluation_app: FastAPI) -> FastAPI:
    await project(database_of(evaluation_app), scenario.all_events())
    return evaluation_app


def approx(expected: float) -> Any:
    return pytest.approx(expected, abs=1e-12)


async def test_platform_indicators(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    found = await values(client, issuer, "platform")
    v, c = found["values"], found["counters"]
    assert found["period"] == {"start": "2026-11-01", "end": "2026-11-30", "days": 30}
    # Six submitted, five of them online (app2 at the counter).
    assert v["applications_submitted"] == 6
    assert v["online_submission_rate"] == approx(5 / 6)
    # Finished: app1, app2, app6 completed, app3 rejected; app4 withdrawn; app5 open.
    assert v["applications_finished"] == 4
    assert (c["completed"], c["rejected"], c["withdrawn"]) == (3, 1, 1)
    # 全程网办: completed, online, no visit: app1 and app6 (app2 came to the counter).
    assert v["online_completion_rate"] == approx(2 / 3)
    # No visit: app1, app3, app6 of four finished.
    assert v["zero_visit_rate"] == approx(3 / 4)
    # 49 h + 192 h + 8 h + 72 h = 321 h over four.
    assert v["avg_processing_hours"] == approx(321 / 4)
    # Working days 2 + 6 + 0 + 3 (app6: workflow's own count).
    assert v["avg_processing_working_days"] == approx(11 / 4)
    # Nearest rank of [0, 2, 3, 6]: ceil(0.9 * 4) = 4th -> 6.
    assert v["p90_processing_working_days"] == 6
    # Legal limits 20 + 20 + 10 + 10 = 60; promised 5 + 5 + 3 + 3 = 16; used 11.
    assert v["time_limit_compression"] == approx(1 - 11 / 60)
    assert v["promised_limit_compression"] == approx(1 - 16 / 60)
    # On time: app1 (2 <= 5), app3 (before its due time); late: app2 (6 > 5), app6 (overdue).
    assert v["on_time_rate"] == approx(2 / 4)
    assert v["supplement_rate"] == approx(1 / 4)
    assert v["approval_rate"] == approx(3 / 4)
    assert v["withdrawal_rate"] == approx(1 / 5)
    # Final counts win over submission's: app1 3/1, app2 1/3, app3 (submission) 2/0.
    assert v["materials_fetched_share"] == approx(6 / 10)
    # Reviews: r1 5, r2 (its revision 2) 1, r3 2.
    assert v["reviews"] == 3
    assert v["satisfaction"] == approx(8 / 3)
    assert v["satisfaction_rate"] == approx(1 / 3)
    assert v["bad_review_rate"] == approx(2 / 3)
    assert v["speed_rating"] == approx(10 / 3)
    assert v["attitude_rating"] == approx(10 / 3)
    assert v["clarity_rating"] == approx(8 / 3)
    assert v["convenience_rating"] == approx(11 / 3)
    # Cases: c1 rectified 6 h after opening; c2 overdue and open.
    assert v["rectification_rate"] == approx(1 / 2)
    assert v["avg_rectification_hours"] == approx(6)
    assert v["case_overdue_rate"] == approx(1 / 2)
    # Exchange: two shared reads, one refusal, three open-data reads, 100 records imported.
    assert (v["exchange_provided"], v["exchange_used"]) == (2, 2)
    assert v["exchange_refusal_rate"] == approx(1 / 3)
    assert v["exchange_provided_per_day"] == approx(2 / 30)
    assert v["open_data_reads"] == 3
    assert v["open_data_reads_per_day"] == approx(3 / 30)
    assert v["records_imported"] == 100


async def test_department_region_and_item_scopes(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    d1 = await values(client, issuer, f"department:{D1}")
    assert d1["name"] == "西湖区某局"
    # D1 owns item A: app1, app2, app5 submitted; app1 and app2 finished.
    assert d1["values"]["applications_submitted"] == 3
    assert d1["values"]["applications_finished"] == 2
    assert d1["values"]["on_time_rate"] == approx(1 / 2)
    assert d1["values"]["bad_review_rate"] == approx(1 / 2)  # r1 good, r2 bad
    assert d1["values"]["exchange_provided"] == 2
    assert d1["values"]["open_data_reads"] == 3
    assert d1["values"]["exchange_refusal_rate"] is None  # it asked for nothing
    assert d1["counters"]["exchange_failed"] == 1  # its system did not deliver one read
    assert d1["counters"]["exchange_refused"] == 0
    d2 = await values(client, issuer, f"department:{D2}")
    assert d2["values"]["applications_submitted"] == 3  # app3, app4, app6
    assert d2["values"]["exchange_refusal_rate"] == approx(1 / 3)
    assert d2["counters"]["exchange_failed"] == 0  # counted against the source, not the reader
    # D3 had a task of app6 only.
    d3 = await values(client, issuer, f"department:{D3}")
    assert d3["values"]["applications_finished"] == 1
    assert d3["values"]["on_time_rate"] == 0
    # Regions roll up: 330106 (item A) < 330100 (items A and B) < 330000.
    xihu = await values(client, issuer, "region:330106")
    assert xihu["values"]["applications_submitted"] == 3
    hangzhou = await values(client, issuer, "region:330100")
    assert hangzhou["values"]["applications_submitted"] == 6
    # Exchange figures of a region are its departments': D1 (330106) and D2, D3 (330100).
    assert xihu["values"]["exchange_provided"] == 2
    assert xihu["values"]["exchange_refusal_rate"] is None
    assert hangzhou["values"]["exchange_refusal_rate"] == approx(1 / 3)
    province = await values(client, issuer, "region:330000")
    assert province["counters"]["finished"] == 4
    assert province["values"]["p90_processing_working_days"] == 6
    item_b = await values(client, issuer, f"item:{ITEM_B}")
    assert item_b["name"] == "事项B"
    assert item_b["values"]["applications_finished"] == 2  # app3, app6
    assert item_b["values"]["p90_processing_working_days"] == 3  # of [0, 3]
    item_a = await values(client, issuer, f"item:{ITEM_A}")
    assert item_a["values"]["supplement_rate"] == approx(1 / 2)
    # The enterprise E1 read open data; it is no department and has no application figures.
    assert (await values(client, issuer, f"department:{E1}"))["counters"]["finished"] == 0


async def test_days_are_local_days(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    # app4 was withdrawn at 17:30 UTC on the 3rd: the 4th in Asia/Shanghai.
    response = await client.get(
        "/v1/indicators/series",
        params={"scope": "platform", "from": "2026-11-02", "to": "2026-11-05",
                "indicator": ["applications_submitted", "withdrawal_rate"]},
        headers=issuer.headers(roles=["evaluator"]),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    points = {p["start"]: p["values"] for p in response.json()["points"]}
    assert points["2026-11-03"]["withdrawal_rate"] == 0  # app3 finished, nothing withdrawn
    assert points["2026-11-04"]["withdrawal_rate"] == approx(1 / 2)  # app1 finished, app4 out
    assert [points[d]["applications_submitted"] for d in sorted(points)] == [3, 2, 1, 0]
    month = await client.get(
        "/v1/indicators/series",
        params={"scope": "platform", "period": "2026-Q4", "granularity": "month",
                "indicator": "applications_finished"},
        headers=issuer.headers(roles=["evaluator"]),
    )  # fmt: skip
    assert [p["values"]["applications_finished"] for p in month.json()["points"]] == [0, 4, 0]


async def test_duplicates_change_nothing(evaluation_app: FastAPI) -> None:
    database = database_of(evaluation_app)
    events = scenario.all_events()
    await project(database, events)
    once = await rows(database)
    # Redelivered past the inbox (e.g. after it was pruned), in other batches: same figures.
    await project(database, events, batch=7)
    await project(database, [e for e in events if e.type.startswith("pingtai.workflow")])
    assert await rows(database) == once


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_any_order_gives_the_same_figures(evaluation_app: FastAPI, seed: int) -> None:
    database = database_of(evaluation_app)
    events = scenario.all_events()
    reference_events = list(events)
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    await project(database, shuffled, batch=5)
    shuffled_rows = await rows(database)
    # The same events in order, after clearing everything derived.
    async with database.sessionmaker() as session, session.begin():
        await clear_derived(session)
    assert await rows(database) == []
    await project(database, reference_events)
    assert shuffled_rows == await rows(database)


async def test_catalog_arriving_after_the_applications(evaluation_app: FastAPI) -> None:
    database = database_of(evaluation_app)
    late = scenario.workflow_events() + scenario.catalog_events()
    await project(database, late)
    late_rows = await rows(database)
    async with database.sessionmaker() as session, session.begin():
        await clear_derived(session)
    await project(database, scenario.catalog_events() + scenario.workflow_events())
    assert late_rows == await rows(database)


async def test_bad_queries_are_problems(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    headers = issuer.headers(roles=["evaluator"])
    bad = [
        {"scope": "platform", "period": "2026-13"},
        {"scope": "platform", "period": "26-11"},
        {"scope": "platform"},
        {"scope": "platform", "from": "2026-11-05", "to": "2026-11-01"},
        {"scope": "platform", "period": "2026-11", "from": "2026-11-01"},
        {"scope": "county:330106", "period": "2026-11"},
    ]
    for params in bad:
        response = await client.get("/v1/indicators/values", params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    response = await client.get(
        "/v1/indicators/series",
        params={"scope": "platform", "period": "2026-11", "indicator": "no_such_thing"},
        headers=headers,
    )
    assert response.status_code == 422


async def test_breakdown_and_csv_export(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    headers = issuer.headers(roles=["evaluator"])
    response = await client.get(
        "/v1/indicators/breakdown",
        params={"scope": "region:330100", "by": "region", "period": "2026-11"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"]["values"]["applications_submitted"] == 6
    assert [c["scope_id"] for c in body["children"]] == ["330106"]
    departments = await client.get(
        "/v1/indicators/breakdown",
        params={"scope": "region:330100", "by": "department", "period": "2026-11"},
        headers=headers,
    )
    assert sorted(c["scope_id"] for c in departments.json()["children"]) == sorted([D1, D2, D3])
    export = await client.get(
        "/v1/indicators/export.csv",
        params={"scope_kind": "department", "period": "2026-11"},
        headers=headers,
    )
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["scope_kind", "scope_id", "name", "day"]
    d1_rows = [line.split(",") for line in lines[1:] if line.split(",")[1] == D1]
    submitted = sum(int(r[header.index("submitted")]) for r in d1_rows)
    assert submitted == 3

"""The composite index (weights changed by version) and who may read what."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.evaluation.index.defaults import DEFAULT_SYSTEM
from tests.evaluation import scenario
from tests.evaluation.helpers import database_of, project
from tests.evaluation.scenario import CITIZEN, D1, D2, D3, ITEM_A, ITEM_B, OTHER_CITIZEN
from tests.identity.conftest import Issuer

NAMES = {
    "governance_precision": ("治理精准度", "Governance precision"),
    "service_experience": ("公共服务体验度", "Public-service experience"),
    "data_value": ("数据共享开放价值", "Data sharing and opening value"),
    "institutional_inclusiveness": ("制度包容度", "Institutional inclusiveness"),
    "infrastructure_perception": ("数字基础设施感知度", "Digital-infrastructure perception"),
}


def one_indicator_each(governance_weight: float) -> dict[str, Any]:
    """A system with one indicator per dimension, so scores are easy to work out by hand."""
    chosen = {
        "governance_precision": ("on_time_rate", 1.0, 0.0),
        "service_experience": ("satisfaction", 5.0, 1.0),
        "data_value": ("materials_fetched_share", 1.0, 0.0),
        "institutional_inclusiveness": ("approval_rate", 1.0, 0.0),
        "infrastructure_perception": ("online_completion_rate", 1.0, 0.0),
    }
    return {
        "dimensions": [
            {"key": key, "name_zh": NAMES[key][0], "name_en": NAMES[key][1],
             "weight": governance_weight if key == "governance_precision" else 1,
             "indicators": [{"indicator": i, "weight": 1, "target": t, "floor": f}]}
            for key, (i, t, f) in chosen.items()
        ]
    }  # fmt: skip


@pytest.fixture
async def loaded(evaluation_app: FastAPI) -> FastAPI:
    await project(database_of(evaluation_app), scenario.all_events())
    return evaluation_app


async def _ranking(client: httpx.AsyncClient, issuer: Issuer, **params: Any) -> dict[str, Any]:
    response = await client.get(
        "/v1/rankings",
        params={"period": "2026-11", **params},
        headers=issuer.headers(roles=["evaluator"]),
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_composite_index_and_changed_weights(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    admin = issuer.headers(roles=["platform_admin"])
    v1 = await client.post("/v1/index-systems", json=one_indicator_each(1), headers=admin)
    assert v1.status_code == 201, v1.text
    assert v1.json()["version"] == 1
    ranking = await _ranking(client, issuer)
    assert ranking["system_version"] == 1
    scores = {c["scope_id"]: c for c in ranking["items"]}
    # D1: on time 1/2 -> 50, rating 3 -> 50, fetched 4/8 -> 50, approved 2/2 -> 100,
    # online completion 1/2 -> 50: (50 + 50 + 50 + 100 + 50) / 5 = 60.
    assert scores[D1]["composite"] == pytest.approx(60)
    # D2: 50, rating 2 -> 25, 2/2 -> 100, 1/2 -> 50, 1/1 -> 100: 325 / 5 = 65.
    assert scores[D2]["composite"] == pytest.approx(65)
    # D3 (app6 only): 0, no reviews, no materials, 100, 100: the three present, 200 / 3.
    assert scores[D3]["composite"] == pytest.approx(200 / 3)
    assert scores[D3]["dimensions"]["service_experience"] is None
    assert [c["scope_id"] for c in ranking["items"]] == [D3, D2, D1]
    assert [c["rank"] for c in ranking["items"]] == [1, 2, 3]
    for card in ranking["items"]:
        assert sum(p["contribution"] for p in card["contributions"]) == pytest.approx(
            card["composite"]
        )
    # Governance weighs three times as much in version 2.
    v2 = await client.post(
        "/v1/index-systems", json={**one_indicator_each(3), "note": "治理加权"}, headers=admin
    )
    assert v2.json()["version"] == 2
    ranking = await _ranking(client, issuer)
    scores = {c["scope_id"]: c["composite"] for c in ranking["items"]}
    assert scores[D1] == pytest.approx(400 / 7)
    assert scores[D2] == pytest.approx(425 / 7)
    assert scores[D3] == pytest.approx(200 / 5)
    assert [c["scope_id"] for c in ranking["items"]] == [D2, D1, D3]
    # Version 1 stays readable and usable.
    old = await _ranking(client, issuer, system_version=1)
    assert [c["scope_id"] for c in old["items"]] == [D3, D2, D1]
    versions = await client.get("/v1/index-systems", headers=issuer.headers(roles=["evaluator"]))
    assert [v["version"] for v in versions.json()] == [0, 1, 2]
    missing = await _get(client, issuer, "/v1/rankings", period="2026-11", system_version=9)
    assert missing.status_code == 404


async def _get(client: httpx.AsyncClient, issuer: Issuer, path: str, **params: Any) -> Any:
    return await client.get(path, params=params, headers=issuer.headers(roles=["evaluator"]))


async def test_default_system_and_region_ranking(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    ranking = await _ranking(client, issuer)
    assert ranking["system_version"] == 0
    assert all(c["composite"] is not None for c in ranking["items"])
    regions = await _ranking(client, issuer, scope_kind="region", level="county")
    assert [c["scope_id"] for c in regions["items"]] == ["330106"]
    cities = await _ranking(client, issuer, scope_kind="region", level="city")
    assert [c["scope_id"] for c in cities["items"]] == ["330100"]


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["dimensions"].pop(),  # four dimensions
        lambda s: s["dimensions"][0]["indicators"][0].update(indicator="no_such_indicator"),
        lambda s: s["dimensions"][0]["indicators"][0].update(target=0.5, floor=0.5),
        lambda s: s["dimensions"][0].update(weight=0),
        lambda s: s["dimensions"][1].update(key="governance_precision"),
        lambda s: s.update(extra=1),
    ],
)
async def test_invalid_systems_are_refused(
    evaluation_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer, change: Any
) -> None:
    system = copy.deepcopy(DEFAULT_SYSTEM)
    change(system)
    response = await client.post(
        "/v1/index-systems", json=system, headers=issuer.headers(roles=["platform_admin"])
    )
    assert response.status_code == 422, response.text


async def test_only_platform_admins_change_the_system(
    evaluation_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    for roles in (["dept_admin"], ["evaluator"], ["citizen"]):
        response = await client.post(
            "/v1/index-systems", json=DEFAULT_SYSTEM, headers=issuer.headers(roles=roles, org=D1)
        )
        assert response.status_code == 403, roles


async def test_indicator_access_by_role(
    loaded: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    def get(scope: str, headers: dict[str, str]) -> Any:
        return client.get(
            "/v1/indicators/values", params={"scope": scope, "period": "2026-11"}, headers=headers
        )

    d1 = issuer.headers(roles=["officer"], org=D1)
    assert (await get(f"department:{D1}", d1)).status_code == 200
    assert (await get(f"item:{ITEM_A}", d1)).status_code == 200  # its own item
    assert (await get(f"item:{ITEM_B}", d1)).status_code == 403
    assert (await get(f"department:{D2}", d1)).status_code == 403
    assert (await get("platform", d1)).status_code == 403
    assert (await get("platform", issuer.headers(roles=["citizen"]))).status_code == 403
    assert (await get("platform", issuer.headers(roles=["evaluator"]))).status_code == 200
    assert (await get("platform", issuer.headers(roles=["platform_admin"]))).status_code == 200
    assert (
        await client.get("/v1/indicators/values", params={"scope": "platform"})
    ).status_code == 401
    # Departments see the rankings, citizens do not.
    assert (
        await client.get("/v1/rankings", params={"period": "2026-11"}, headers=d1)
    ).status_code == 200
    citizen = issuer.headers(roles=["citizen"])
    assert (
        await client.get("/v1/rankings", params={"period": "2026-11"}, headers=citizen)
    ).status_code == 403
    # A department's export holds its own rows only.
    export = await client.get(
        "/v1/indicators/export.csv", params={"scope_kind": "department", "period": "2026-11"},
        headers=d1,
    )  # fmt: skip
    assert {line.split(",")[1] for line in export.text.strip().splitlines()[1:]} == {D1}
    other = await client.get(
        "/v1/indicators/export.csv",
        params={"scope_kind": "department", "scope_id": D2, "period": "2026-11"},
        headers=d1,
    )
    assert other.status_code == 403
    breakdown = await client.get(
        "/v1/indicators/breakdown",
        params={"scope": f"department:{D1}", "by": "item", "period": "2026-11"},
        headers=d1,
    )
    assert [c["scope_id"] for c in breakdown.json()["children"]] == [ITEM_A]


async def test_review_and_case_views_by_role(
    evaluation_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    await project(
        database_of(evaluation_app), scenario.catalog_events() + scenario.workflow_events()
    )
    mine = issuer.headers(sub=CITIZEN, roles=["citizen"])
    bad = {"overall": 1, "speed": 1, "attitude": 1, "clarity": 1, "convenience": 1}
    created = await client.post(
        "/v1/reviews", json={"application_id": "app2", **bad, "comment": "窗口态度差"}, headers=mine
    )
    review_id, [case_id] = created.json()["id"], created.json()["case_ids"]
    await client.post(
        "/v1/reviews",
        json={"application_id": "app3", **bad, "comment": "不予许可理由不清"},
        headers=mine,
    )
    evaluator = issuer.headers(roles=["evaluator"])
    seen = (await client.get(f"/v1/reviews/{review_id}", headers=evaluator)).json()
    assert (seen["application_id"], seen["applicant_id"], seen["comment"]) == (None, None, None)
    assert seen["overall"] == 1
    case = (await client.get(f"/v1/cases/{case_id}", headers=evaluator)).json()
    assert (case["application_id"], case["applicant_id"], case["reply"]) == (None, None, None)
    d1 = issuer.headers(roles=["officer"], org=D1)
    listed = (await client.get("/v1/reviews", headers=d1)).json()["items"]
    assert [r["id"] for r in listed] == [review_id]  # app3's review is D2's
    assert listed[0]["comment"] == "窗口态度差" and listed[0]["applicant_id"] is None
    assert (
        await client.get("/v1/reviews", params={"department_id": D2}, headers=d1)
    ).status_code == 403
    assert len((await client.get("/v1/cases", headers=d1)).json()["items"]) == 1
    d2 = issuer.headers(roles=["dept_admin"], org=D2)
    assert (await client.get(f"/v1/cases/{case_id}", headers=d2)).status_code == 404
    assert (await client.get(f"/v1/reviews/{review_id}", headers=d2)).status_code == 404
    own = (await client.get("/v1/reviews", headers=mine)).json()["items"]
    assert len(own) == 2 and own[0]["applicant_id"] == CITIZEN
    other = issuer.headers(sub=OTHER_CITIZEN, roles=["citizen"])
    assert (await client.get("/v1/reviews", headers=other)).json()["items"] == []
    assert (await client.get("/v1/cases", headers=other)).json()["items"] == []
    assert (await client.get(f"/v1/reviews/{review_id}", headers=other)).status_code == 404
    admin = (
        await client.get(
            f"/v1/reviews/{review_id}", headers=issuer.headers(roles=["platform_admin"])
        )
    ).json()
    assert admin["applicant_id"] == CITIZEN
    # Pages: one review per page, the cursor walks to the second.
    first = (await client.get("/v1/reviews", params={"limit": 1}, headers=mine)).json()
    second = await client.get(
        "/v1/reviews", params={"limit": 1, "cursor": first["next_cursor"]}, headers=mine
    )
    assert second.json()["items"][0]["id"] != first["items"][0]["id"]
    broken = await client.get("/v1/reviews", params={"cursor": "bm9wZQ"}, headers=mine)
    assert broken.status_code in (400, 422)

"""The review and case lists read their [time, id] cursor with a shape: a forged one is a 400."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from libs.common.pagination import encode_cursor
from tests.evaluation import scenario
from tests.evaluation.helpers import database_of, project
from tests.evaluation.scenario import CITIZEN
from tests.identity.conftest import Issuer

AT = "2026-11-05T08:00:00+00:00"
# Each was a 500 (or a 422 of the wrong kind) before the lists read a shape.
FORGED = [
    10**30,
    ["garbage", "x"],
    "a\u0000b",
    [AT, "a\u0000b"],
    [AT, 10**30],
    [10**30, "x"],
    ["9999-12-31T23:59:59-23:59", "x"],  # overflows when turned to UTC
    [AT, "x", "extra"],
    [AT],
    None,
]


@pytest.mark.parametrize("path", ["/v1/reviews", "/v1/cases"])
async def test_forged_cursors_are_400_problems(
    evaluation_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer, path: str
) -> None:
    evaluator = issuer.headers(roles=["evaluator"])
    for position in FORGED:
        cursor = encode_cursor(position)
        response = await client.get(path, params={"cursor": cursor}, headers=evaluator)
        assert response.status_code == 400, (position, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/invalid-cursor"), position


@pytest.mark.parametrize("path", ["/v1/reviews", "/v1/cases"])
async def test_each_list_takes_the_cursor_it_gives_out(
    evaluation_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer, path: str
) -> None:
    await project(
        database_of(evaluation_app), scenario.catalog_events() + scenario.workflow_events()
    )
    mine = issuer.headers(sub=CITIZEN, roles=["citizen"])
    bad = {"overall": 1, "speed": 1, "attitude": 1, "clarity": 1, "convenience": 1}
    for application_id in ("app2", "app3"):  # two bad reviews, each opening a case
        body = {"application_id": application_id, **bad, "comment": "办理太慢"}
        created = await client.post("/v1/reviews", json=body, headers=mine)
        assert created.status_code == 201, created.text
    evaluator = issuer.headers(roles=["evaluator"])
    first = (await client.get(path, params={"limit": 1}, headers=evaluator)).json()
    assert first["next_cursor"] is not None
    second = await client.get(
        path, params={"limit": 1, "cursor": first["next_cursor"]}, headers=evaluator
    )
    assert second.status_code == 200, second.text
    assert len(second.json()["items"]) == 1
    assert second.json()["items"][0]["id"] != first["items"][0]["id"]

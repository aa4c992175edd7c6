"""Officers see the materials their department's branches need, not a whole bundle's; cursors
that are not the list's own are 400 problems, never 500s."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from libs.common.pagination import encode_cursor
from tests.workflow.applications.test_process import citizen, officer, submit
from tests.workflow.conftest import Issuer
from tests.workflow.helpers import RESIDENT_ID, FakeExchange, make_item, publish_bundle


async def test_an_officer_sees_only_the_materials_of_their_departments_branches(
    app: FastAPI, api: httpx.AsyncClient, exchange: FakeExchange, issuer: Issuer
) -> None:
    a, b = make_item("dept-a"), make_item("dept-b")
    bundle = await publish_bundle(app, [a, b])
    exchange.records[(a.dataset_id, RESIDENT_ID)] = {"name": "张伟", "status": "secret-of-a"}
    exchange.records[(b.dataset_id, RESIDENT_ID)] = {"name": "张伟", "status": "b"}
    made = await submit(api, citizen(issuer, "carol"), bundle_id=bundle)
    application = await api.get(f"/v1/applications/{made['id']}", headers=officer(issuer, b.owner))
    assert application.status_code == 200, application.text
    assert [m["dataset_id"] for m in application.json()["materials"]] == [b.dataset_id]
    [task] = [t for t in made["tasks"] if t["department_org_id"] == b.owner]
    detail = await api.get(f"/v1/tasks/{task['id']}", headers=officer(issuer, b.owner))
    assert detail.status_code == 200, detail.text
    assert [m["dataset_id"] for m in detail.json()["materials"]] == [b.dataset_id]
    # The applicant sees every material.
    own = await api.get(f"/v1/applications/{made['id']}", headers=citizen(issuer, "carol"))
    assert {m["dataset_id"] for m in own.json()["materials"]} == {a.dataset_id, b.dataset_id}


@pytest.mark.parametrize(
    "position",
    [["garbage", "x"], [10**30, "x"], ["2026-11-28T08:00:00+00:00", 5], "x", 10**30, [None]],
)
async def test_a_cursor_not_given_out_by_the_list_is_a_400(
    api: httpx.AsyncClient, issuer: Issuer, position: object
) -> None:
    org = uuid.uuid4().hex
    cursor = encode_cursor(position)
    admin = issuer.headers(sub="a1", roles=["dept_admin"], org=org, acr="3")
    for path, headers in [
        ("/v1/applications", citizen(issuer, "c1")),
        ("/v1/tasks", officer(issuer, org)),
        ("/v1/webhooks", admin),
    ]:
        answer = await api.get(path, params={"cursor": cursor}, headers=headers)
        if path == "/v1/webhooks" and position == "x":
            assert answer.status_code == 200, answer.text  # an id: the webhooks' own shape
            continue
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["type"].endswith("invalid-cursor"), answer.text

"""Service items: every definition rule, drafts, publishing, versions, authorisation, events."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.catalog.items import service as items_service
from tests.catalog.conftest import Issuer, outbox_events, outbox_types
from tests.catalog.items.helpers import (
    MARKET,
    POLICE,
    PROBLEM,
    TEMPLATE,
    create_item,
    dept_admin,
    item_body,
    platform_admin,
    published_dataset,
    published_item,
    sourced,
)


def _messages(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return " | ".join(e["msg"] for e in response.json()["errors"])


async def test_a_department_admin_describes_publishes_and_everyone_reads(
    client: httpx.AsyncClient, issuer: Issuer, catalog_app: FastAPI
) -> None:
    admin = dept_admin(issuer)
    created = await create_item(client, admin, item_body())
    assert created["status"] == "draft" and created["showing"] == "draft"
    assert created["owner_org_id"] == MARKET
    # A draft is the department's: outsiders see nothing.
    assert (await client.get(f"/v1/items/{created['id']}")).status_code == 404
    other = issuer.headers(roles=["officer"], org=POLICE)
    assert (await client.get(f"/v1/items/{created['id']}", headers=other)).status_code == 404
    colleague = issuer.headers(roles=["officer"], org=MARKET)
    assert (await client.get(f"/v1/items/{created['id']}", headers=colleague)).status_code == 200

    published = await client.post(f"/v1/items/{created['id']}/publish", headers=admin)
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 1
    public = await client.get(f"/v1/items/{created['id']}")
    assert public.status_code == 200
    assert public.json()["showing"] == "published" and public.json()["version"] == 1
    assert public.json()["has_unpublished_changes"] is None
    assert await outbox_types(catalog_app) == [
        "pingtai.catalog.item.draft_changed",
        "pingtai.catalog.item.published",
    ]
    _, data = (await outbox_events(catalog_app))[-1]
    assert data["version"] == 1 and data["snapshot"]["form"]["properties"]["credit_code"]
    # The anonymous read serves the body stored at publish: the same as the full view, also
    # after the draft changes.
    await _assert_public_read_is_the_view(client, catalog_app, created["id"])
    renamed = {"name": "新名称"}
    edited = await client.patch(f"/v1/items/{created['id']}", json=renamed, headers=admin)
    assert edited.status_code == 200, edited.text
    await _assert_public_read_is_the_view(client, catalog_app, created["id"])


async def test_a_referenced_version_never_changes(
    client: httpx.AsyncClient, issuer: Issuer, catalog_app: FastAPI
) -> None:
    admin = dept_admin(issuer)
    item = await published_item(client, admin, item_body())
    v1 = (await client.get(f"/v1/items/{item['id']}/versions/1")).json()

    edited = await client.patch(
        f"/v1/items/{item['id']}", json={"name": "食品经营许可（新）", "max_visits": 1},
        headers=admin,
    )  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert edited.json()["has_unpublished_changes"] is True
    # The public still sees version 1 while the draft changes.
    assert (await client.get(f"/v1/items/{item['id']}")).json()["name"] == "食品经营许可证核发"
    assert (await client.post(f"/v1/items/{item['id']}/publish", headers=admin)).status_code == 201
    assert (await client.get(f"/v1/items/{item['id']}/versions/1")).json() == v1
    v2 = (await client.get(f"/v1/items/{item['id']}/versions/2")).json()
    assert v2["snapshot"]["name"] == "食品经营许可（新）"
    versions = (await client.get(f"/v1/items/{item['id']}/versions")).json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
    # Nothing new to publish: a conflict, not a third identical version.
    assert (await client.post(f"/v1/items/{item['id']}/publish", headers=admin)).status_code == 409
    assert (await client.get(f"/v1/items/{item['id']}/versions/3")).status_code == 404

    retired = await client.post(f"/v1/items/{item['id']}/retire", headers=admin)
    assert retired.json()["status"] == "retired"
    assert (await client.get(f"/v1/items/{item['id']}/versions/1")).json() == v1
    assert (await client.get("/v1/items")).json()["items"] == []
    assert (await client.patch(f"/v1/items/{item['id']}", json={"name": "x"},
                               headers=admin)).status_code == 409  # fmt: skip
    types = await outbox_types(catalog_app)
    assert types[-1] == "pingtai.catalog.item.retired"
    assert types.count("pingtai.catalog.item.published") == 2


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"type": "object", "properties": {"a": {"type": "strnig"}}}, "not a valid JSON Schema"),
        ({"type": "array", "items": {"type": "string"}}, "type 'object'"),
        ({"type": "object", "properties": {"a": {"minLength": -1}}}, "not a valid JSON Schema"),
        ({"type": "object"}, "declare its properties"),
        ({"type": "object", "properties": {f"p{i}": {"description": "x" * 2000}
                                           for i in range(40)}}, "at most"),
    ],
)  # fmt: skip
async def test_a_form_must_be_a_bounded_json_schema_of_an_object(
    client: httpx.AsyncClient, issuer: Issuer, form: dict[str, Any], expected: str
) -> None:
    response = await client.post("/v1/items", json=item_body(form=form), headers=dept_admin(issuer))
    assert expected in _messages(response)


def _template(**changes: Any) -> dict[str, Any]:
    template = copy.deepcopy(TEMPLATE)
    template.update(changes)
    return template


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (_template(states=[s for s in TEMPLATE["states"] if s["key"] != "done"]
                   + [{"key": "closed", "name": "关闭"}]), "no end state"),
        (_template(states=[*TEMPLATE["states"], {"key": "orphan", "name": "孤立"}]),
         "unreachable from 'submitted': orphan"),
        (_template(actions=[{**TEMPLATE["actions"][0], "to_states": ["nowhere"]},
                            *TEMPLATE["actions"][1:]]), "unknown state 'nowhere'"),
        (_template(actions=[{**a, "supplement": True} for a in TEMPLATE["actions"]]),
         "at most one 'request supplement' step"),
        (_template(start="limbo"), "unknown state 'limbo'"),
        (_template(actions=[a for a in TEMPLATE["actions"] if a["key"] != "approve"]),
         "unreachable from 'submitted': done"),
    ],
)  # fmt: skip
async def test_a_process_template_must_be_sound(
    client: httpx.AsyncClient, issuer: Issuer, template: dict[str, Any], expected: str
) -> None:
    response = await client.post(
        "/v1/items", json=item_body(template=template), headers=dept_admin(issuer)
    )
    assert expected in _messages(response)


async def test_an_unreachable_end_is_reported(client: httpx.AsyncClient, issuer: Issuer) -> None:
    template = {
        "start": "a",
        "states": [{"key": "a", "name": "A"}, {"key": "b", "name": "B"},
                   {"key": "end", "name": "E", "end": True}],
        "actions": [{"key": "go", "name": "go", "from_states": ["a"], "to_states": ["b"],
                     "role": "officer", "sla_days": 1},
                    {"key": "back", "name": "back", "from_states": ["b"], "to_states": ["a"],
                     "role": "officer", "sla_days": 1}],
    }  # fmt: skip
    response = await client.post(
        "/v1/items", json=item_body(template=template), headers=dept_admin(issuer)
    )
    assert "no end state can be reached" in _messages(response)


async def test_parallel_branches_join_before_the_end(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    template = {
        "start": "submitted",
        "states": [{"key": "submitted", "name": "已提交"}, {"key": "police", "name": "公安"},
                   {"key": "tax", "name": "税务"}, {"key": "done", "name": "办结", "end": True}],
        "actions": [
            {"key": "fan_out", "name": "分发", "from_states": ["submitted"],
             "to_states": ["police", "tax"], "role": "officer", "sla_days": 1},
            {"key": "join", "name": "汇总办结", "from_states": ["police", "tax"],
             "to_states": ["done"], "role": "dept_admin", "department": POLICE, "sla_days": 2},
        ],
    }  # fmt: skip
    await create_item(client, dept_admin(issuer), item_body(template=template))


async def test_sourced_materials_name_a_published_dataset_and_its_fields(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    admin = dept_admin(issuer)
    dataset_id = await published_dataset(client, admin)
    ok = await create_item(client, admin, item_body(materials=[sourced(dataset_id)]))
    assert ok["materials"][0]["dataset"]["dataset_id"] == dataset_id

    cases = [
        (sourced("0" * 32), "no published dataset"),
        (sourced(dataset_id, fields=["entity_name", "shoe_size"]), "shoe_size"),
        (sourced(dataset_id, applicant_field="resident_id"), "not a property of the form"),
    ]
    for n, (material, expected) in enumerate(cases):
        response = await client.post(
            "/v1/items", json=item_body(f"zj-market-1{n}0", materials=[material]), headers=admin
        )
        assert expected in _messages(response)


@pytest.mark.parametrize(
    "changes",
    [
        {"promised_time_limit_days": 30},
        {"min_assurance_level": 4},
        {"max_visits": 2},
        {"kind": "tax"},
        {"fee": {"amount_fen": -1}},
        {"applicant_types": []},
        {"applicant_types": ["alien"]},
        {"code": "Bad Code"},
        {"extra": 1},
        {"materials": [{"key": "x", "name": "x", "source": "upload"}]},
        {"form": "not an object"},
        {"template": {"start": "a", "states": [], "actions": []}},
        {"region_code": "33"},
    ],
)
async def test_bad_input_is_a_problem_never_a_500(
    client: httpx.AsyncClient, issuer: Issuer, changes: dict[str, Any]
) -> None:
    response = await client.post("/v1/items", json=item_body(**changes), headers=dept_admin(issuer))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_edits_keep_the_rules(client: httpx.AsyncClient, issuer: Issuer) -> None:
    admin = dept_admin(issuer)
    item = await create_item(client, admin, item_body())
    for changes in ({"promised_time_limit_days": 99}, {"name": None}, {"form": {"type": 1}}):
        response = await client.patch(f"/v1/items/{item['id']}", json=changes, headers=admin)
        assert response.status_code == 422, response.text


async def test_who_may_manage_items(client: httpx.AsyncClient, issuer: Issuer) -> None:
    body = item_body()
    assert (await client.post("/v1/items", json=body)).status_code == 401
    for headers in (
        issuer.headers(roles=["officer"], org=MARKET),
        issuer.headers(roles=["citizen"]),
        dept_admin(issuer, POLICE),  # another department's admin
    ):
        assert (await client.post("/v1/items", json=body, headers=headers)).status_code == 403
    item = await create_item(client, platform_admin(issuer), body)
    assert (await client.patch(f"/v1/items/{item['id']}", json={"name": "改"},
                               headers=dept_admin(issuer, POLICE))).status_code == 403  # fmt: skip
    assert (await client.post(f"/v1/items/{item['id']}/publish",
                              headers=dept_admin(issuer, POLICE))).status_code == 403  # fmt: skip
    assert (await client.post(f"/v1/items/{item['id']}/publish",
                              headers=dept_admin(issuer))).status_code == 201  # fmt: skip
    assert (await client.post(f"/v1/items/{item['id']}/retire",
                              headers=issuer.headers(roles=["officer"], org=MARKET))
            ).status_code == 403  # fmt: skip
    # Without owner_org_id a department admin describes their own department's item.
    mine = await create_item(
        client, dept_admin(issuer, POLICE), item_body("zj-police-001", owner_org_id=None)
    )
    assert mine["owner_org_id"] == POLICE
    assert (await client.post("/v1/items", json=item_body("zj-x-001", owner_org_id=None),
                              headers=platform_admin(issuer))).status_code == 422  # fmt: skip
    duplicate = await client.post("/v1/items", json=body, headers=platform_admin(issuer))
    assert duplicate.status_code == 409


async def test_drafts_are_listed_for_their_department(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    await create_item(client, dept_admin(issuer), item_body())
    police = item_body("zj-police-001", owner_org_id=POLICE)
    await create_item(client, dept_admin(issuer, POLICE), police)
    mine = await client.get("/v1/item-drafts", headers=dept_admin(issuer))
    assert [i["code"] for i in mine.json()["items"]] == ["zj-market-001"]
    everything = await client.get("/v1/item-drafts", headers=platform_admin(issuer))
    assert len(everything.json()["items"]) == 2
    other = await client.get(
        "/v1/item-drafts", params={"owner_org_id": POLICE}, headers=dept_admin(issuer)
    )
    assert other.status_code == 403
    assert (await client.get("/v1/item-drafts")).status_code == 401


async def test_unknown_items_and_versions_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/items/nope")).status_code == 404
    assert (await client.get("/v1/items/nope/versions/1")).status_code == 404
    assert (await client.get("/v1/items/nope/versions/0")).status_code == 422
    assert (await client.get("/v1/items", params={"cursor": "%%%"})).status_code == 400


async def _assert_public_read_is_the_view(
    client: httpx.AsyncClient, catalog_app: FastAPI, item_id: str
) -> None:
    public = await client.get(f"/v1/items/{item_id}")
    assert public.status_code == 200 and public.headers["content-type"] == "application/json"
    async with catalog_app.state.database.sessionmaker() as session:
        item = await items_service.get(session=session, item_id=item_id)
        view = await items_service.view(session=session, principal=None, item=item)
    assert public.json() == view.model_dump(mode="json")

"""One-thing bundles: published items only, the merged form, materials, versions, events."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from fastapi import FastAPI

from tests.catalog.conftest import Issuer, outbox_types
from tests.catalog.items.helpers import (
    FORM,
    MARKET,
    POLICE,
    TAX,
    create_item,
    dept_admin,
    item_body,
    platform_admin,
    published_dataset,
    published_item,
    sourced,
)


async def _two_items(
    client: httpx.AsyncClient, issuer: Issuer, *, second_form: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any], str]:
    dataset_id = await published_dataset(client, dept_admin(issuer))
    licence = await published_item(
        client, dept_admin(issuer), item_body(materials=[sourced(dataset_id)])
    )
    form = second_form or {
        "type": "object",
        "properties": {
            "credit_code": copy.deepcopy(FORM["properties"]["credit_code"]),
            "taxpayer_kind": {"type": "string", "enum": ["general", "small"]},
        },
        "required": ["credit_code", "taxpayer_kind"],
    }
    tax = await published_item(
        client, dept_admin(issuer, TAX),
        item_body("zj-tax-001", name="新办纳税人涉税事项", owner_org_id=TAX, form=form,
                  materials=[sourced(dataset_id, fields=["entity_name", "credit_code"])]),
    )  # fmt: skip
    return licence, tax, dataset_id


async def test_the_merged_form_asks_a_shared_field_once(
    client: httpx.AsyncClient, issuer: Issuer, catalog_app: FastAPI
) -> None:
    licence, tax, dataset_id = await _two_items(client, issuer)
    admin = platform_admin(issuer)
    response = await client.post(
        "/v1/bundles",
        json={"code": "zj-open-business", "name": "开办企业一件事",
              "item_ids": [licence["id"], tax["id"]]},
        headers=admin,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    bundle = response.json()
    assert bundle["owner_org_id"] is None and bundle["status"] == "draft"
    form = bundle["merged_form"]
    assert sorted(form["properties"]) == ["address", "credit_code", "entity_name", "taxpayer_kind"]
    assert form["required"] == ["credit_code", "entity_name", "taxpayer_kind"]
    assert {s["item_id"] for s in bundle["field_sources"]["credit_code"]} == {
        licence["id"], tax["id"]
    }  # fmt: skip
    # The same dataset keyed by the same field: one material, the fields both need.
    sourced_materials = [m for m in bundle["materials"] if m["source"] == "dataset"]
    assert len(sourced_materials) == 1
    assert sourced_materials[0]["dataset"]["fields"] == [
        "entity_name", "legal_representative", "credit_code"
    ]  # fmt: skip
    assert sorted(sourced_materials[0]["item_ids"]) == sorted([licence["id"], tax["id"]])

    # Not public until published.
    assert (await client.get(f"/v1/bundles/{bundle['id']}")).status_code == 404
    published = await client.post(f"/v1/bundles/{bundle['id']}/publish", headers=admin)
    assert published.status_code == 201, published.text
    version = published.json()
    assert [i["version"] for i in version["snapshot"]["items"]] == [1, 1]
    public = (await client.get(f"/v1/bundles/{bundle['id']}")).json()
    assert public["showing"] == "published" and public["merged_form"] == form

    # A new version of an item does not change the bundle version that used the old one.
    await client.patch(f"/v1/items/{tax['id']}", json={"name": "新办纳税人套餐"},
                       headers=dept_admin(issuer, TAX))  # fmt: skip
    await client.post(f"/v1/items/{tax['id']}/publish", headers=dept_admin(issuer, TAX))
    again = await client.post(f"/v1/bundles/{bundle['id']}/publish", headers=admin)
    assert again.status_code == 201, again.text
    assert [i["version"] for i in again.json()["snapshot"]["items"]] == [1, 2]
    v1 = await client.get(f"/v1/bundles/{bundle['id']}/versions/1")
    assert v1.json() == version
    listed = (await client.get("/v1/bundles", params={"item_id": tax["id"]})).json()["items"]
    assert [b["code"] for b in listed] == ["zj-open-business"]
    in_bundle = await client.get("/v1/items", params={"bundle_id": bundle["id"]})
    assert {i["id"] for i in in_bundle.json()["items"]} == {licence["id"], tax["id"]}

    retired = await client.post(f"/v1/bundles/{bundle['id']}/retire", headers=admin)
    assert retired.json()["status"] == "retired"
    assert (await client.get("/v1/bundles")).json()["items"] == []
    types = await outbox_types(catalog_app)
    assert types.count("pingtai.catalog.bundle.published") == 2
    assert types[-1] == "pingtai.catalog.bundle.retired"


async def test_conflicting_fields_are_reported_unless_renamed(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    form = {
        "type": "object",
        "properties": {
            "credit_code": {"type": "integer"},
            "address": copy.deepcopy(FORM["properties"]["address"]),
        },
        "required": ["credit_code"],
    }
    licence, tax, _ = await _two_items(client, issuer, second_form=form)
    body: dict[str, Any] = {"code": "zj-b", "name": "冲突", "item_ids": [licence["id"], tax["id"]]}
    response = await client.post("/v1/bundles", json=body, headers=platform_admin(issuer))
    assert response.status_code == 422, response.text
    messages = [e["msg"] for e in response.json()["errors"]]
    assert any("'credit_code' is defined differently" in m for m in messages), messages

    body["field_mapping"] = {tax["id"]: {"credit_code": "tax_credit_number"}}
    response = await client.post("/v1/bundles", json=body, headers=platform_admin(issuer))
    assert response.status_code == 201, response.text
    merged = response.json()
    assert merged["merged_form"]["properties"]["tax_credit_number"] == {"type": "integer"}
    assert "tax_credit_number" in merged["merged_form"]["required"]
    dataset_material = next(m for m in merged["materials"]
                            if tax["id"] in m["item_ids"] and m["source"] == "dataset")  # fmt: skip
    assert dataset_material["dataset"]["applicant_field"] == "tax_credit_number"

    body["code"] = "zj-c"
    body["field_mapping"] = {tax["id"]: {"shoe_size": "x"}, "0" * 32: {"a": "b"}}
    response = await client.post("/v1/bundles", json=body, headers=platform_admin(issuer))
    assert response.status_code == 422


async def test_bundles_hold_distinct_published_items(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    licence = await published_item(client, dept_admin(issuer), item_body())
    draft = await create_item(client, dept_admin(issuer), item_body("zj-market-002"))
    admin = platform_admin(issuer)
    cases = [
        ([licence["id"], "f" * 32], "no published service item"),
        ([licence["id"], draft["id"]], "no published service item"),
        ([licence["id"], licence["id"]], "listed twice"),
    ]
    for item_ids, expected in cases:
        response = await client.post(
            "/v1/bundles", json={"code": "zj-b", "name": "x", "item_ids": item_ids}, headers=admin
        )
        assert response.status_code == 422, response.text
        assert expected in response.text
    one = await client.post(
        "/v1/bundles", json={"code": "zj-b", "name": "x", "item_ids": [licence["id"]]},
        headers=admin,
    )  # fmt: skip
    assert one.status_code == 422
    # A bundle cannot hold another bundle (no nesting, so no cycles).
    await client.post(f"/v1/items/{draft['id']}/publish", headers=dept_admin(issuer))
    made = await client.post(
        "/v1/bundles", json={"code": "zj-b", "name": "x", "item_ids": [licence["id"], draft["id"]]},
        headers=admin,
    )  # fmt: skip
    assert made.status_code == 201
    nested = await client.post(
        "/v1/bundles",
        json={"code": "zj-n", "name": "y", "item_ids": [licence["id"], made.json()["id"]]},
        headers=admin,
    )  # fmt: skip
    assert nested.status_code == 422
    # An item retired after the draft was written stops the publish.
    await client.post(f"/v1/items/{draft['id']}/retire", headers=dept_admin(issuer))
    blocked = await client.post(f"/v1/bundles/{made.json()['id']}/publish", headers=admin)
    assert blocked.status_code == 422


async def test_who_may_manage_bundles(client: httpx.AsyncClient, issuer: Issuer) -> None:
    licence = await published_item(client, dept_admin(issuer), item_body())
    other = await published_item(client, dept_admin(issuer), item_body("zj-market-002"))
    body = {"code": "zj-b", "name": "x", "item_ids": [licence["id"], other["id"]]}
    assert (await client.post("/v1/bundles", json=body)).status_code == 401
    officer = issuer.headers(roles=["officer"], org=MARKET)
    assert (await client.post("/v1/bundles", json=body, headers=officer)).status_code == 403
    foreign = {**body, "owner_org_id": MARKET}
    assert (await client.post("/v1/bundles", json=foreign,
                              headers=dept_admin(issuer, POLICE))).status_code == 403  # fmt: skip
    mine = await client.post("/v1/bundles", json=body, headers=dept_admin(issuer, POLICE))
    assert mine.status_code == 201 and mine.json()["owner_org_id"] == POLICE
    bundle_id = mine.json()["id"]
    assert (await client.patch(f"/v1/bundles/{bundle_id}", json={"name": "改"},
                               headers=dept_admin(issuer))).status_code == 403  # fmt: skip
    edited = await client.patch(f"/v1/bundles/{bundle_id}", json={"name": "改"},
                                headers=dept_admin(issuer, POLICE))  # fmt: skip
    assert edited.status_code == 200 and edited.json()["name"] == "改"
    assert (await client.get(f"/v1/bundles/{bundle_id}", headers=officer)).status_code == 404
    bad = await client.patch(f"/v1/bundles/{bundle_id}", json={"item_ids": None},
                             headers=dept_admin(issuer, POLICE))  # fmt: skip
    assert bad.status_code == 422


async def test_bundle_drafts_are_listed_for_their_department(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    licence, tax, _ = await _two_items(client, issuer)
    admin = platform_admin(issuer)
    item_ids = [licence["id"], tax["id"]]

    async def bundle(code: str, headers: dict[str, str], owner: str | None) -> dict[str, Any]:
        body = {"code": code, "name": "一件事", "item_ids": item_ids, "owner_org_id": owner}
        created = await client.post("/v1/bundles", json=body, headers=headers)
        assert created.status_code == 201, created.text
        return dict(created.json())

    market_b = await bundle("zj-b-market-2", dept_admin(issuer), MARKET)
    market_a = await bundle("zj-b-market-1", dept_admin(issuer), MARKET)
    await bundle("zj-b-tax", dept_admin(issuer, TAX), TAX)
    await bundle("zj-b-platform", admin, None)
    published = await bundle("zj-b-market-0", dept_admin(issuer), MARKET)
    assert (
        await client.post(f"/v1/bundles/{published['id']}/publish", headers=admin)
    ).status_code == 201

    mine = await client.get("/v1/bundle-drafts", headers=dept_admin(issuer))
    assert mine.status_code == 200, mine.text
    assert [b["code"] for b in mine.json()["items"]] == ["zj-b-market-1", "zj-b-market-2"]
    assert {b["showing"] for b in mine.json()["items"]} == {"draft"}
    # Typed cursor pages, in code order.
    first = await client.get("/v1/bundle-drafts", params={"limit": 1}, headers=dept_admin(issuer))
    assert [b["id"] for b in first.json()["items"]] == [market_a["id"]]
    cursor = first.json()["next_cursor"]
    second = await client.get(
        "/v1/bundle-drafts", params={"limit": 1, "cursor": cursor}, headers=dept_admin(issuer)
    )
    assert [b["id"] for b in second.json()["items"]] == [market_b["id"]]
    # Another department's admin sees none of them, nor asks for them.
    police = await client.get("/v1/bundle-drafts", headers=dept_admin(issuer, POLICE))
    assert police.status_code == 200 and police.json()["items"] == []
    other = await client.get(
        "/v1/bundle-drafts", params={"owner_org_id": MARKET}, headers=dept_admin(issuer, POLICE)
    )
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/problem+json"
    # Platform admins see every department's and the platform's own.
    everything = await client.get("/v1/bundle-drafts", headers=admin)
    assert [b["code"] for b in everything.json()["items"]] == [
        "zj-b-market-1", "zj-b-market-2", "zj-b-platform", "zj-b-tax"
    ]  # fmt: skip
    taxes = await client.get("/v1/bundle-drafts", params={"owner_org_id": TAX}, headers=admin)
    assert [b["code"] for b in taxes.json()["items"]] == ["zj-b-tax"]
    citizen = issuer.headers(roles=["citizen"], org=None)
    assert (await client.get("/v1/bundle-drafts", headers=citizen)).status_code == 403
    assert (await client.get("/v1/bundle-drafts")).status_code == 401

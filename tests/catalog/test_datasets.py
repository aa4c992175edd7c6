"""The data-resource catalogue (政务信息资源目录) through the catalog API."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.catalog.conftest import Issuer, outbox_events, outbox_types

PROBLEM = "application/problem+json"
GONGAN = uuid.UUID(int=1).hex  # 公安厅
SCJG = uuid.UUID(int=2).hex  # 市场监管局


def population(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "zj-population-basic",
        "name": "人口基础信息",
        "name_en": "Population basic information",
        "description": "常住人口的基础身份信息。",
        "owner_org_id": GONGAN,
        "region_code": "330000",
        "fields": [
            {"name": "resident_id", "type": "string", "sensitivity": "personal"},
            {"name": "name", "type": "string", "sensitivity": "personal"},
            {"name": "sex", "type": "string", "sensitivity": "personal"},
            {"name": "birth_date", "type": "date", "sensitivity": "personal"},
            {"name": "household_address", "type": "string", "sensitivity": "personal"},
        ],
        "subject_key": {"kind": "resident_id", "field": "resident_id"},
        "share_type": "conditional",
        "open_type": "not_open",
        "not_open_reason": "涉及个人隐私（《个人信息保护法》）",
        "update_frequency": "daily",
        "hosting": {"mode": "federated", "endpoint_url": "https://data.gat.zj.gov.cn/population"},
    }
    body.update(overrides)
    return body


def legal_entity(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "zj-legal-entity",
        "name": "法人基础信息",
        "name_en": "Legal entity registration",
        "owner_org_id": SCJG,
        "region_code": "330000",
        "fields": [
            {"name": "credit_code", "type": "string", "sensitivity": "public"},
            {"name": "entity_name", "type": "string", "sensitivity": "public"},
            {"name": "established_on", "type": "date", "sensitivity": "public"},
        ],
        "subject_key": {"kind": "credit_code", "field": "credit_code"},
        "share_type": "unconditional",
        "open_type": "open",
        "update_frequency": "realtime",
        "hosting": {"mode": "hosted"},
    }
    body.update(overrides)
    return body


def platform_admin(issuer: Issuer) -> dict[str, str]:
    return issuer.headers(roles=["platform_admin"])


def dept_admin(issuer: Issuer, org: str = GONGAN) -> dict[str, str]:
    return issuer.headers(roles=["dept_admin"], org=org)


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/v1/datasets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_published(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    created = await create(client, headers, body)
    published = await client.post(f"/v1/datasets/{created['id']}/publish", headers=headers)
    assert published.status_code == 200, published.text
    result: dict[str, Any] = published.json()
    return result


async def test_a_department_admin_describes_publishes_and_everyone_reads(
    client: httpx.AsyncClient, catalog_app: FastAPI, issuer: Issuer
) -> None:
    admin = dept_admin(issuer)
    body = population()
    del body["owner_org_id"]  # a department admin's own department by default
    draft = await create(client, admin, body)
    assert (draft["status"], draft["showing"], draft["version"]) == ("draft", "draft", None)
    assert draft["owner_org_id"] == GONGAN
    assert draft["has_unpublished_changes"] is True
    assert draft["subject_key"] == {"kind": "resident_id", "field": "resident_id"}
    assert draft["fields"][0] == {
        "name": "resident_id", "type": "string", "description": "", "sensitivity": "personal"
    }  # fmt: skip

    published = await client.post(f"/v1/datasets/{draft['id']}/publish", headers=admin)
    assert published.status_code == 200
    assert (published.json()["status"], published.json()["version"]) == ("published", 1)

    anonymous = await client.get(f"/v1/datasets/{draft['id']}")
    assert anonymous.status_code == 200
    seen = anonymous.json()
    assert (seen["showing"], seen["version"], seen["has_unpublished_changes"]) == (
        "published", 1, None
    )  # fmt: skip
    assert seen["not_open_reason"] == body["not_open_reason"]
    assert seen["published_at"] is not None

    version = await client.get(f"/v1/datasets/{draft['id']}/versions/1")
    assert version.status_code == 200
    assert version.json()["definition"]["code"] == "zj-population-basic"
    assert version.json()["definition"]["hosting"] == body["hosting"]

    by_code = await client.get("/v1/datasets", params={"code": "zj-population-basic"})
    assert [d["id"] for d in by_code.json()["items"]] == [draft["id"]]
    assert (await client.get("/v1/datasets", params={"code": "zj-nothing"})).json()["items"] == []

    events = await outbox_events(catalog_app)
    assert [t for t, _ in events] == [
        "pingtai.catalog.dataset.draft_changed",
        "pingtai.catalog.dataset.published",
    ]
    published_event = events[1][1]
    assert published_event["version"] == 1
    assert published_event["definition"] == version.json()["definition"]
    assert events[0][1]["created"] is True


async def test_published_versions_never_change_and_numbers_increase(
    client: httpx.AsyncClient, catalog_app: FastAPI, issuer: Issuer
) -> None:
    admin = dept_admin(issuer, SCJG)
    first = await create_published(client, admin, legal_entity())
    dataset_id = first["id"]
    v1 = (await client.get(f"/v1/datasets/{dataset_id}/versions/1")).json()

    nothing = await client.post(f"/v1/datasets/{dataset_id}/publish", headers=admin)
    assert nothing.status_code == 409

    fields = [*legal_entity()["fields"], {"name": "capital", "type": "number",
                                          "sensitivity": "public"}]  # fmt: skip
    edited = await client.patch(
        f"/v1/datasets/{dataset_id}",
        json={"name": "法人登记信息", "fields": fields},
        headers=admin,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "法人登记信息"
    assert edited.json()["has_unpublished_changes"] is True
    assert edited.json()["status"] == "published"

    # The public still sees version 1; the owner sees the draft unless it asks.
    public = (await client.get(f"/v1/datasets/{dataset_id}")).json()
    assert (public["name"], public["version"]) == ("法人基础信息", 1)
    own = (await client.get(f"/v1/datasets/{dataset_id}", headers=admin)).json()
    assert (own["name"], own["showing"]) == ("法人登记信息", "draft")
    own_published = await client.get(
        f"/v1/datasets/{dataset_id}", params={"view": "published"}, headers=admin
    )
    assert own_published.json()["name"] == "法人基础信息"
    listed = (await client.get("/v1/datasets", params={"q": "登记"})).json()["items"]
    assert listed == []

    republished = await client.post(f"/v1/datasets/{dataset_id}/publish", headers=admin)
    assert republished.json()["version"] == 2
    assert (await client.get(f"/v1/datasets/{dataset_id}/versions/1")).json() == v1
    v2 = (await client.get(f"/v1/datasets/{dataset_id}/versions/2")).json()
    assert v2["definition"]["name"] == "法人登记信息"
    assert len(v2["definition"]["fields"]) == 4

    # Editing back to what version 2 says leaves nothing to publish.
    await client.patch(f"/v1/datasets/{dataset_id}", json={"name": "x"}, headers=admin)
    back = await client.patch(
        f"/v1/datasets/{dataset_id}", json={"name": "法人登记信息"}, headers=admin
    )
    assert back.json()["has_unpublished_changes"] is False
    assert (
        await client.post(f"/v1/datasets/{dataset_id}/publish", headers=admin)
    ).status_code == 409
    unchanged = await client.patch(
        f"/v1/datasets/{dataset_id}", json={"name": "法人登记信息"}, headers=admin
    )
    assert unchanged.status_code == 200

    versions = (await client.get(f"/v1/datasets/{dataset_id}/versions")).json()
    assert [v["version"] for v in versions["items"]] == [1, 2]
    paged = (await client.get(f"/v1/datasets/{dataset_id}/versions", params={"limit": 1})).json()
    assert [v["version"] for v in paged["items"]] == [1]
    rest = await client.get(
        f"/v1/datasets/{dataset_id}/versions", params={"limit": 1, "cursor": paged["next_cursor"]}
    )
    assert [v["version"] for v in rest.json()["items"]] == [2]
    assert (await client.get(f"/v1/datasets/{dataset_id}/versions/3")).status_code == 404

    types = await outbox_types(catalog_app)
    assert types.count("pingtai.catalog.dataset.published") == 2
    # created, the edit, "x", and back: the no-op edit records nothing.
    assert types.count("pingtai.catalog.dataset.draft_changed") == 4


async def test_retiring_keeps_versions_readable_and_stops_changes(
    client: httpx.AsyncClient, catalog_app: FastAPI, issuer: Issuer
) -> None:
    admin = dept_admin(issuer, SCJG)
    dataset = await create_published(client, admin, legal_entity())
    retired = await client.post(f"/v1/datasets/{dataset['id']}/retire", headers=admin)
    assert retired.status_code == 200
    assert (retired.json()["status"], retired.json()["version"]) == ("retired", 1)
    assert retired.json()["retired_at"] is not None

    assert (await client.get("/v1/datasets")).json()["items"] == []
    gone = (await client.get("/v1/datasets", params={"status": "retired"})).json()["items"]
    assert [d["id"] for d in gone] == [dataset["id"]]
    assert (await client.get(f"/v1/datasets/{dataset['id']}/versions/1")).status_code == 200

    for attempt in (
        client.post(f"/v1/datasets/{dataset['id']}/retire", headers=admin),
        client.post(f"/v1/datasets/{dataset['id']}/publish", headers=admin),
        client.patch(f"/v1/datasets/{dataset['id']}", json={"name": "新"}, headers=admin),
    ):
        response = await attempt
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM

    draft = await create(client, admin, legal_entity(code="zj-legal-entity-draft"))
    never = await client.post(f"/v1/datasets/{draft['id']}/retire", headers=admin)
    assert never.status_code == 409

    (_, event) = [e for e in await outbox_events(catalog_app) if e[0].endswith(".retired")][0]
    assert (event["dataset_id"], event["last_version"]) == (dataset["id"], 1)


def _errors(response: httpx.Response) -> list[tuple[str, ...]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return [tuple(str(p) for p in e["loc"]) for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            lambda b: b["fields"].append(
                {"name": "name", "type": "string", "sensitivity": "personal"}
            ),
            ("body", "fields", "5", "name"),
        ),
        (lambda b: b.update(subject_key={"kind": "resident_id", "field": "id_number"}),
         ("body", "subject_key", "field")),
        (lambda b: b.update(subject_key={"kind": "resident_id", "field": "birth_date"}),
         ("body", "subject_key", "field")),
        (lambda b: b.update(not_open_reason=None), ("body", "not_open_reason")),
        (lambda b: b.update(not_open_reason=""), ("body", "not_open_reason")),
        (lambda b: b.update(hosting={"mode": "federated"}), ("body", "hosting", "endpoint_url")),
        (lambda b: b.update(hosting={"mode": "hosted", "endpoint_url": "https://x.cn/a"}),
         ("body", "hosting", "endpoint_url")),
        (lambda b: b.update(hosting={"mode": "federated", "endpoint_url": "ftp://x.cn/a"}),
         ("body", "hosting", "endpoint_url")),
        (lambda b: b.update(hosting={"mode": "federated", "endpoint_url": "http://x.cn/a"}),
         ("body", "hosting", "endpoint_url")),
        (lambda b: b.update(hosting={"mode": "federated",
                                     "endpoint_url": "https://u:p@x.cn/a"}),
         ("body", "hosting", "endpoint_url")),
        (lambda b: b.update(share_type="not_shared", open_type="open", not_open_reason=None),
         ("body", "open_type")),
        (lambda b: b.update(open_type="open", not_open_reason=None),
         ("body", "fields", "0", "sensitivity")),
        (lambda b: b.update(open_type="conditional"), ("body", "not_open_reason")),
        (lambda b: b["fields"][0].update(sensitivity="secret"),
         ("body", "fields", "0", "sensitivity")),
        (lambda b: b["fields"][0].update(type="text"), ("body", "fields", "0", "type")),
        (lambda b: b["fields"][0].update(name="Resident-ID"), ("body", "fields", "0", "name")),
        (lambda b: b.update(fields=[]), ("body", "fields")),
        (lambda b: b.update(code="ZJ Population"), ("body", "code")),
        (lambda b: b.update(code="zj"), ("body", "code")),
        (lambda b: b.update(share_type="sometimes"), ("body", "share_type")),
        (lambda b: b.update(update_frequency="hourly"), ("body", "update_frequency")),
        (lambda b: b.update(region_code="33"), ("body", "region_code")),
        (lambda b: b.update(colour="blue"), ("body", "colour")),
        (lambda b: b["subject_key"].update(kind="passport"), ("body", "subject_key", "kind")),
        (lambda b: b.update(name="名" * 201), ("body", "name")),
        (lambda b: b.update(description="x" * 100_000), ("body", "description")),
        (lambda b: b.update(name=42), ("body", "name")),
    ],
)  # fmt: skip
async def test_every_rule_of_a_definition_is_a_422_naming_the_field(
    client: httpx.AsyncClient, issuer: Issuer, change: Any, where: tuple[str, ...]
) -> None:
    body = copy.deepcopy(population())
    change(body)
    response = await client.post("/v1/datasets", json=body, headers=dept_admin(issuer))
    assert where in _errors(response)


async def test_a_patch_is_checked_as_the_whole_definition_it_makes(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    admin = dept_admin(issuer)
    dataset = await create(client, admin, population())
    url = f"/v1/datasets/{dataset['id']}"
    # The key's field can no longer go missing from the fields.
    fewer = [f for f in population()["fields"] if f["name"] != "resident_id"]
    assert ("body", "subject_key", "field") in _errors(
        await client.patch(url, json={"fields": fewer}, headers=admin)
    )
    assert ("body", "not_open_reason") in _errors(
        await client.patch(url, json={"not_open_reason": None}, headers=admin)
    )
    assert ("body",) in _errors(await client.patch(url, json={"name": None}, headers=admin))
    assert ("body", "code") in _errors(
        await client.patch(url, json={"code": "x-y-z"}, headers=admin)
    )
    assert ("body", "owner_org_id") in _errors(
        await client.patch(url, json={"owner_org_id": SCJG}, headers=admin)
    )
    # Several broken rules are reported together.
    both = await client.patch(
        url, json={"hosting": {"mode": "federated"}, "not_open_reason": None}, headers=admin
    )
    assert {("body", "hosting", "endpoint_url"), ("body", "not_open_reason")} <= set(_errors(both))
    fine = await client.patch(
        url,
        json={"open_type": "conditional", "not_open_reason": None, "hosting": {"mode": "hosted"}},
        headers=admin,
    )
    assert fine.status_code == 200, fine.text
    assert fine.json()["hosting"] == {"mode": "hosted", "endpoint_url": None}


async def test_local_http_endpoints_outside_production_only(
    client: httpx.AsyncClient, catalog_app: FastAPI, issuer: Issuer
) -> None:
    body = population(hosting={"mode": "federated", "endpoint_url": "http://127.0.0.1:9000/p"})
    assert (
        await client.post("/v1/datasets", json=body, headers=dept_admin(issuer))
    ).status_code == 201
    catalog_app.state.settings.env = "production"
    try:
        again = population(
            code="zj-population-copy",
            hosting={"mode": "federated", "endpoint_url": "http://127.0.0.1:9000/p"},
        )
        response = await client.post("/v1/datasets", json=again, headers=dept_admin(issuer))
        assert ("body", "hosting", "endpoint_url") in _errors(response)
    finally:
        catalog_app.state.settings.env = "test"


async def test_codes_are_unique(client: httpx.AsyncClient, issuer: Issuer) -> None:
    await create(client, dept_admin(issuer), population())
    again = await client.post("/v1/datasets", json=population(), headers=platform_admin(issuer))
    assert again.status_code == 409
    assert again.json()["type"].endswith("dataset-exists")


async def test_who_may_see_and_change_a_dataset(client: httpx.AsyncClient, issuer: Issuer) -> None:
    owner = dept_admin(issuer)
    draft = await create(client, owner, population())
    url = f"/v1/datasets/{draft['id']}"
    officer = issuer.headers(roles=["officer"], org=GONGAN)
    other_admin = dept_admin(issuer, SCJG)
    citizen = issuer.headers(roles=["citizen"])
    admin = platform_admin(issuer)

    # A draft: the owner department's admins and officers and platform admins; 404 to the rest.
    for headers, expected in (
        ({}, 404), (citizen, 404), (other_admin, 404), (officer, 200), (owner, 200), (admin, 200)
    ):  # fmt: skip
        assert (await client.get(url, headers=headers)).status_code == expected, headers
        versions = await client.get(f"{url}/versions", headers=headers)
        assert versions.status_code == expected
    # Only the owner's admins and platform admins change it.
    for headers, expected in ((citizen, 404), (other_admin, 404), (officer, 403), (admin, 200)):
        response = await client.patch(url, json={"description": "新"}, headers=headers)
        assert response.status_code == expected, headers
    anonymous_patch = await client.patch(url, json={"description": "新"})
    assert anonymous_patch.status_code == 401
    assert (await client.post(f"{url}/publish", headers=officer)).status_code == 403
    assert (await client.post(f"{url}/publish", headers=owner)).status_code == 200

    # Published: everyone reads; outsiders still may not change it.
    for headers in ({}, citizen, other_admin, officer):
        assert (await client.get(url, headers=headers)).status_code == 200
    for headers in (citizen, other_admin, officer):
        response = await client.patch(url, json={"description": "改"}, headers=headers)
        assert response.status_code == 403
        assert (await client.post(f"{url}/retire", headers=headers)).status_code == 403
    outsider_draft = await client.get(url, params={"view": "draft"}, headers=citizen)
    assert outsider_draft.status_code == 403

    # Creating: department admins for their own department; platform admins for any.
    cases = (
        (other_admin, population(code="zj-pop-other")),
        (officer, population(code="zj-pop-officer")),
        (citizen, population(code="zj-pop-citizen")),
    )
    for headers, body in cases:
        assert (await client.post("/v1/datasets", json=body, headers=headers)).status_code == 403
    assert (
        await client.post("/v1/datasets", json=population(code="zj-pop-anon"))
    ).status_code == 401
    for_any = await client.post(
        "/v1/datasets", json=legal_entity(code="zj-by-platform"), headers=admin
    )
    assert for_any.status_code == 201
    no_owner = legal_entity(code="zj-no-owner")
    del no_owner["owner_org_id"]
    assert ("body", "owner_org_id") in _errors(
        await client.post("/v1/datasets", json=no_owner, headers=admin)
    )


async def test_lists_filter_and_page(client: httpx.AsyncClient, issuer: Issuer) -> None:
    admin = platform_admin(issuer)
    await create_published(client, admin, population())
    for n in range(5):
        await create_published(
            client, admin, legal_entity(code=f"zj-entity-{n}", name=f"企业年报{n}", name_en=None)
        )
    draft = await create(client, dept_admin(issuer), population(code="zj-population-draft"))

    everything = (await client.get("/v1/datasets")).json()
    assert [d["code"] for d in everything["items"]] == [
        "zj-entity-0", "zj-entity-1", "zj-entity-2", "zj-entity-3", "zj-entity-4",
        "zj-population-basic",
    ]  # fmt: skip
    assert everything["next_cursor"] is None

    codes: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/datasets", params=params)).json()
        codes += [d["code"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert codes == [d["code"] for d in everything["items"]]

    async def codes_for(**params: Any) -> list[str]:
        response = await client.get("/v1/datasets", params=params)
        assert response.status_code == 200, response.text
        return [d["code"] for d in response.json()["items"]]

    assert await codes_for(owner_org_id=GONGAN) == ["zj-population-basic"]
    assert await codes_for(share_type="conditional") == ["zj-population-basic"]
    assert len(await codes_for(open_type="open")) == 5
    assert await codes_for(subject_kind="resident_id") == ["zj-population-basic"]
    assert await codes_for(q="人口") == ["zj-population-basic"]
    assert await codes_for(q="population") == ["zj-population-basic"]
    assert await codes_for(q="年报3") == ["zj-entity-3"]
    assert await codes_for(q="%") == []
    assert await codes_for(q="企业", open_type="open", limit=2) == ["zj-entity-0", "zj-entity-1"]

    # Drafts: their department's staff and platform admins only.
    assert (await client.get("/v1/datasets", params={"status": "draft"})).status_code == 401
    citizen = issuer.headers(roles=["citizen"])
    drafts = await client.get("/v1/datasets", params={"status": "draft"}, headers=citizen)
    assert drafts.status_code == 403
    officer = issuer.headers(roles=["officer"], org=GONGAN)
    seen = await client.get("/v1/datasets", params={"status": "draft"}, headers=officer)
    assert [d["id"] for d in seen.json()["items"]] == [draft["id"]]
    other = dept_admin(issuer, SCJG)
    theirs = await client.get("/v1/datasets", params={"status": "draft"}, headers=other)
    assert theirs.json()["items"] == []
    snooping = await client.get(
        "/v1/datasets", params={"status": "draft", "owner_org_id": GONGAN}, headers=other
    )
    assert snooping.status_code == 403
    everyone = await client.get("/v1/datasets", params={"status": "draft"}, headers=admin)
    assert [d["code"] for d in everyone.json()["items"]] == ["zj-population-draft"]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor!"},
        {"limit": 0},
        {"limit": 201},
        {"share_type": "maybe"},
        {"status": "deleted"},
        {"code": "NOT A CODE"},
        {"q": "x" * 101},
        {"owner_org_id": "x" * 33},
        {"owner_org_id": "a\x00b"},
        {"q": "a\x00b"},
    ],
)
async def test_bad_list_queries_are_problems(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get("/v1/datasets", params=params)
    assert response.status_code in {400, 422}
    assert response.headers["content-type"] == PROBLEM


async def test_bad_input_is_never_a_500(client: httpx.AsyncClient, issuer: Issuer) -> None:
    admin = dept_admin(issuer)
    headers = {**admin, "content-type": "application/json"}
    for raw in (b"{", b"[]", b"null", b'"text"', '{"code": "\u0000"}'.encode(), b"\xff\xfe"):
        response = await client.post("/v1/datasets", content=raw, headers=headers)
        assert response.status_code == 422, raw
    dataset = await create(client, admin, population())
    url = f"/v1/datasets/{dataset['id']}"
    assert (await client.patch(url, content=b"{", headers=headers)).status_code == 422
    assert (await client.patch(url, json={"fields": "all"}, headers=admin)).status_code == 422
    nul = await client.patch(url, json={"description": "a\u0000b"}, headers=admin)
    assert ("body", "description") in _errors(nul)
    assert (await client.get("/v1/datasets/a%00b")).status_code == 422
    assert (await client.get("/v1/datasets/" + "x" * 33)).status_code == 422
    nul_field = population(code="zj-nul")
    nul_field["fields"][0]["description"] = "\x00"
    assert ("body", "fields", "0", "description") in _errors(
        await client.post("/v1/datasets", json=nul_field, headers=admin)
    )
    assert (await client.get("/v1/datasets/nope")).status_code == 404
    assert (await client.get(f"{url}/versions/0")).status_code == 422
    assert (await client.get(f"{url}/versions/99999999999")).status_code == 422
    assert (await client.get(f"{url}/versions/one")).status_code == 422
    assert (await client.post("/v1/datasets/nope/publish", headers=admin)).status_code == 404
    huge = population(code="zj-huge", fields=[
        {"name": f"f{n}", "type": "string", "sensitivity": "public"} for n in range(201)
    ])  # fmt: skip
    assert ("body", "fields") in _errors(
        await client.post("/v1/datasets", json=huge, headers=admin)
    )

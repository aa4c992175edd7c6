"""One rule for every draft of the catalogue (datasets, service items, bundles): platform admins
and the owner department's officers and admins see it; the department's other people and its
systems, like everyone else, see what is published (a never-published draft is 404)."""

from __future__ import annotations

import httpx
import pytest

from tests.catalog.conftest import Issuer
from tests.catalog.items.helpers import (
    MARKET,
    POLICE,
    create_item,
    dept_admin,
    item_body,
    legal_entity_dataset,
    platform_admin,
    published_dataset,
    published_item,
    sourced,
)

INSIDERS = ("officer", "dept_admin", "platform_admin")
OUTSIDERS = ("system", "member", "agent", "other_officer", "anonymous")
LISTS = {"dataset": ("/v1/datasets", {"status": "draft"}), "item": ("/v1/item-drafts", {}),
         "bundle": ("/v1/bundle-drafts", {})}  # fmt: skip


def _caller(issuer: Issuer, who: str) -> dict[str, str]:
    if who == "anonymous":
        return {}
    if who == "platform_admin":
        return platform_admin(issuer)
    roles, org, acr = {
        "officer": (["citizen", "officer"], MARKET, "3"),
        "dept_admin": (["dept_admin"], MARKET, "3"),
        "system": ([], MARKET, ""),  # the department's system: client credentials
        "member": (["citizen"], MARKET, "2"),  # of the department, without a staff role
        "agent": (["citizen", "enterprise_agent"], MARKET, "2"),
        "other_officer": (["citizen", "officer"], POLICE, "3"),
    }[who]
    return issuer.headers(roles=roles, org=org, acr=acr)


async def _draft(client: httpx.AsyncClient, issuer: Issuer, kind: str) -> str:
    """A never-published draft of department MARKET, of ``kind``; its id."""
    admin = dept_admin(issuer)
    if kind == "dataset":
        created = await client.post("/v1/datasets", json=legal_entity_dataset(), headers=admin)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])
    if kind == "item":
        return str((await create_item(client, admin, item_body()))["id"])
    dataset_id = await published_dataset(client, admin)
    items = [
        await published_item(client, admin, item_body(code, materials=[sourced(dataset_id)]))
        for code in ("zj-market-001", "zj-market-002")
    ]
    created = await client.post(
        "/v1/bundles",
        json={"code": "zj-b-market", "name": "一件事", "item_ids": [i["id"] for i in items],
              "owner_org_id": MARKET},
        headers=admin,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.parametrize("kind", ["dataset", "item", "bundle"])
async def test_one_rule_shows_a_draft_to_the_owner_departments_staff_only(
    client: httpx.AsyncClient, issuer: Issuer, kind: str
) -> None:
    draft_id = await _draft(client, issuer, kind)
    path = f"/v1/{kind}s/{draft_id}"
    for who in INSIDERS:
        seen = await client.get(path, headers=_caller(issuer, who))
        assert seen.status_code == 200, (who, seen.text)
        assert seen.json()["showing"] == "draft"
    for who in OUTSIDERS:
        hidden = await client.get(path, headers=_caller(issuer, who))
        assert hidden.status_code == 404, (who, hidden.text)
        assert hidden.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("kind", ["dataset", "item", "bundle"])
async def test_one_rule_lists_drafts_for_the_owner_departments_staff_only(
    client: httpx.AsyncClient, issuer: Issuer, kind: str
) -> None:
    draft_id = await _draft(client, issuer, kind)
    path, params = LISTS[kind]
    for who in INSIDERS:
        listed = await client.get(path, params=params, headers=_caller(issuer, who))
        assert listed.status_code == 200, (who, listed.text)
        assert draft_id in [d["id"] for d in listed.json()["items"]]
    other = await client.get(path, params=params, headers=_caller(issuer, "other_officer"))
    assert other.status_code == 200 and other.json()["items"] == []  # their own: none
    for who in ("system", "member", "agent"):
        refused = await client.get(path, params=params, headers=_caller(issuer, who))
        assert refused.status_code == 403, (who, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(path, params=params)).status_code == 401


async def test_a_published_item_shows_its_department_systems_the_published_version(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    item = await published_item(client, dept_admin(issuer), item_body())
    edited = await client.patch(f"/v1/items/{item['id']}", json={"name": "改名"},
                                headers=dept_admin(issuer))  # fmt: skip
    assert edited.status_code == 200, edited.text
    for who, showing in (("system", "published"), ("member", "published"), ("officer", "draft")):
        seen = await client.get(f"/v1/items/{item['id']}", headers=_caller(issuer, who))
        assert seen.status_code == 200, (who, seen.text)
        assert seen.json()["showing"] == showing, who

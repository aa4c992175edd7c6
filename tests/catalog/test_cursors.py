"""Every catalog list reads its cursor with a shape: a forged one is a 400 problem, never a 500."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.catalog.conftest import Issuer
from tests.catalog.items.helpers import item_body, platform_admin, published_dataset, published_item


def _forged(position: object) -> str:
    text = json.dumps(position, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


FORGED = [
    10**30,  # overflows an SQL integer
    2**63,
    0,
    -3,
    "a\u0000b",  # PostgreSQL refuses NUL in text
    "",
    "x" * 600,
    ["garbage", "x"],
    ["r", 10**30, "zj-a-001"],  # a search cursor whose rank overflows
    ["r", 7, "zj-a-001"],
    ["n", "名称"],
    ["c", "zj-a-001", "extra"],
    {"code": "zj-a-001"},
    None,
    True,
    1.5,
]


@pytest.fixture
async def paths(client: httpx.AsyncClient, issuer: Issuer) -> dict[str, str]:
    admin = platform_admin(issuer)
    item = await published_item(client, admin, item_body("zj-cursor-001"))
    dataset_id = await published_dataset(client, admin)
    return {
        "items": "/v1/items",
        "items by name": "/v1/items?sort=name",
        "items by relevance": "/v1/items?q=%E9%A3%9F%E5%93%81",
        "item drafts": "/v1/item-drafts",
        "item versions": f"/v1/items/{item['id']}/versions",
        "bundles": "/v1/bundles",
        "bundle drafts": "/v1/bundle-drafts",
        "bundle versions": f"/v1/bundles/{'0' * 32}/versions",
        "datasets": "/v1/datasets",
        "dataset versions": f"/v1/datasets/{dataset_id}/versions",
    }


async def test_forged_cursors_are_400_problems_on_every_list(
    client: httpx.AsyncClient, issuer: Issuer, paths: dict[str, str]
) -> None:
    headers = platform_admin(issuer)
    for name, path in paths.items():
        for position in FORGED:
            # "1" is a valid code cursor and 1 a valid version: each list refuses the others.
            response = await client.get(path, params={"cursor": _forged(position)}, headers=headers)
            assert response.status_code == 400, (name, position, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/invalid-cursor"), (name, position)


async def test_each_list_takes_the_cursors_it_gives_out(
    client: httpx.AsyncClient, issuer: Issuer, paths: dict[str, str]
) -> None:
    headers = platform_admin(issuer)
    # A second item and a second version, so every list of items has a next page.
    await published_item(client, headers, item_body("zj-cursor-002", name="食品经营备案"))
    item_id = paths["item versions"].split("/")[3]
    edited = await client.patch(f"/v1/items/{item_id}", json={"name": "食品新名"}, headers=headers)
    assert edited.status_code == 200, edited.text
    assert (await client.post(f"/v1/items/{item_id}/publish", headers=headers)).status_code == 201
    for name in ("items", "items by name", "items by relevance", "item versions"):
        first = await client.get(paths[name], params={"limit": 1}, headers=headers)
        assert first.status_code == 200, (name, first.text)
        cursor = first.json()["next_cursor"]
        assert cursor is not None, name
        second = await client.get(
            paths[name], params={"limit": 1, "cursor": cursor}, headers=headers
        )
        assert second.status_code == 200, (name, second.text)
        assert second.json()["items"] != first.json()["items"], name

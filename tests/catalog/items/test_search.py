"""Public search of published items: keyword, filters, region prefixes, sorts and pages."""

from __future__ import annotations

from typing import Any

import httpx

from tests.catalog.conftest import Issuer
from tests.catalog.items.helpers import (
    MARKET,
    POLICE,
    create_item,
    dept_admin,
    item_body,
    platform_admin,
    published_item,
)

ITEMS: list[dict[str, Any]] = [
    {"code": "zj-a-001", "name": "食品经营许可", "description": "餐饮服务", "region_code": "330100",
     "max_visits": 0, "applicant_types": ["enterprise"], "owner_org_id": MARKET},
    {"code": "zj-a-002", "name": "户口迁移", "description": "办理户籍和食品无关",
     "region_code": "330106", "max_visits": 1, "applicant_types": ["individual"],
     "owner_org_id": POLICE, "kind": "administrative_confirmation"},
    {"code": "zj-a-003", "name": "小餐饮登记（食品）", "description": "小餐饮",
     "region_code": "330203", "max_visits": 0,
     "applicant_types": ["individual", "enterprise"], "owner_org_id": MARKET},
    {"code": "zj-a-004", "name": "Ｆｏｏｄ ｆａｉｒ permit", "description": "50%_off",
     "region_code": "330000", "max_visits": 1, "applicant_types": ["enterprise"],
     "owner_org_id": MARKET, "kind": "public_service"},
]  # fmt: skip


async def _load(client: httpx.AsyncClient, issuer: Issuer) -> None:
    for body in ITEMS:
        await published_item(client, platform_admin(issuer), item_body(**body))
    await create_item(client, dept_admin(issuer), item_body("zj-a-999", name="食品草稿"))


async def _codes(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/v1/items", params=params)
    assert response.status_code == 200, response.text
    return [i["code"] for i in response.json()["items"]]


async def test_filters(client: httpx.AsyncClient, issuer: Issuer) -> None:
    await _load(client, issuer)
    assert await _codes(client) == ["zj-a-001", "zj-a-002", "zj-a-003", "zj-a-004"]
    # Name matches first, then description-only matches; drafts never show.
    assert await _codes(client, q="食品") == ["zj-a-001", "zj-a-003", "zj-a-002"]
    assert await _codes(client, q="FAIR") == ["zj-a-004"]  # full-width and case folded
    assert await _codes(client, q="%_") == ["zj-a-004"]  # LIKE wildcards are literal
    assert await _codes(client, q="50%") == ["zj-a-004"]
    assert await _codes(client, owner_org_id=POLICE) == ["zj-a-002"]
    assert await _codes(client, region_code="330100") == ["zj-a-001", "zj-a-002"]
    assert await _codes(client, region_code="330000") == [i["code"] for i in ITEMS]
    assert await _codes(client, region_code="330106") == ["zj-a-002"]
    assert await _codes(client, applicant_type="individual") == ["zj-a-002", "zj-a-003"]
    assert await _codes(client, online_only="true") == ["zj-a-001", "zj-a-003"]
    assert await _codes(client, max_visits=1) == [i["code"] for i in ITEMS]
    assert await _codes(client, kind="public_service") == ["zj-a-004"]
    assert await _codes(client, code="zj-a-003") == ["zj-a-003"]
    assert await _codes(client, q="食品", online_only="true", applicant_type="individual") == [
        "zj-a-003"
    ]
    assert await _codes(client, sort="name") == sorted(
        (i["code"] for i in ITEMS), key=lambda c: next(i["name"] for i in ITEMS if i["code"] == c)
    )
    for bad in ({"region_code": "33"}, {"kind": "x"}, {"max_visits": 5}, {"sort": "random"},
                {"q": "x" * 101}, {"limit": 0}, {"bundle_id": "nope"}):  # fmt: skip
        response = await client.get("/v1/items", params=bad)
        assert response.status_code in (404, 422), (bad, response.text)


async def test_pages_follow_the_cursor_for_each_sort(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    await _load(client, issuer)
    for params in ({}, {"sort": "name"}, {"q": "食品"}, {"sort": "code", "q": "食品"}):
        seen: list[str] = []
        cursor = None
        while True:
            page = (
                await client.get("/v1/items", params={**params, "limit": 1,
                                                       **({"cursor": cursor} if cursor else {})})
            ).json()  # fmt: skip
            seen.extend(i["code"] for i in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == await _codes(client, **params), params
    # A cursor of one sort order does not fit another.
    first = (await client.get("/v1/items", params={"limit": 1})).json()["next_cursor"]
    wrong = await client.get("/v1/items", params={"sort": "name", "cursor": first})
    assert wrong.status_code == 400
    assert wrong.json()["type"].endswith("/invalid-cursor")


async def test_keywords_of_any_length_match_substrings(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    await _load(client, issuer)
    # One character, two (one search term each), longer (a term, then checked), with spaces.
    assert await _codes(client, q="品") == ["zj-a-001", "zj-a-003", "zj-a-002"]
    assert await _codes(client, q="餐饮") == ["zj-a-003", "zj-a-001"]
    assert await _codes(client, q="食品经营") == ["zj-a-001"]
    assert await _codes(client, q="和食品无") == ["zj-a-002"]
    assert await _codes(client, q="food fair") == ["zj-a-004"]
    assert await _codes(client, q="r p") == ["zj-a-004"]
    assert await _codes(client, q="食品经营许可证") == []
    # A retired item leaves the search; its terms with it.
    item = (await client.get("/v1/items", params={"code": "zj-a-001"})).json()["items"][0]
    retired = await client.post(f"/v1/items/{item['id']}/retire", headers=platform_admin(issuer))
    assert retired.status_code == 200
    assert await _codes(client, q="食品") == ["zj-a-003", "zj-a-002"]
    assert await _codes(client, q="经营") == []

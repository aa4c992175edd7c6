"""The demo service items and bundles load through the catalog API after the datasets, twice."""

from __future__ import annotations

from fastapi import FastAPI

from pingtai.demo.catalog_datasets import seed_catalog_datasets
from pingtai.demo.catalog_items import BUNDLES, ITEMS, seed_catalog_items
from tests.catalog.conftest import Issuer, outbox_types
from tests.catalog.test_demo_datasets import _gateway


async def test_the_demo_items_and_bundles_load_and_load_again(
    catalog_app: FastAPI, issuer: Issuer
) -> None:
    assert len(ITEMS) >= 40 and len({i.owner for i in ITEMS}) == 8
    said: list[str] = []
    async with _gateway(catalog_app, issuer.token(roles=["platform_admin"])) as gateway:
        await seed_catalog_datasets(gateway, said.append)
        made = len(ITEMS) + len(BUNDLES)
        assert await seed_catalog_items(gateway, said.append) == made
        assert await seed_catalog_items(gateway, said.append) == made
        bundles = (await gateway.get("/api/catalog/v1/bundles")).json()["items"]
        assert {b["code"] for b in bundles} == {b[0] for b in BUNDLES}
        birth = next(b for b in bundles if b["code"] == "zj-bundle-birth")
        merged = (await gateway.get(f"/api/catalog/v1/bundles/{birth['id']}")).json()
        online = await gateway.get("/api/catalog/v1/items", params={"q": "医保", "limit": 200})
    assert len(merged["items"]) == 4
    assert merged["merged_form"]["properties"]["resident_id"]["title"] == "公民身份号码"
    assert any(m["source"] == "dataset" for m in merged["materials"])
    assert len(online.json()["items"]) >= 3
    types = await outbox_types(catalog_app)
    assert types.count("pingtai.catalog.item.published") == len(ITEMS)
    assert types.count("pingtai.catalog.bundle.published") == len(BUNDLES)

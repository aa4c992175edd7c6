"""The demo datasets load through the catalog API (identity's departments stubbed), twice."""

from __future__ import annotations

import hashlib

import httpx
from fastapi import FastAPI

from pingtai.demo.catalog_datasets import DATASETS, seed_catalog_datasets
from tests.catalog.conftest import Issuer, outbox_types

CODES = {
    "zj-population-basic", "zj-legal-entity", "zj-real-estate", "zj-social-insurance",
    "zj-medical-insurance", "zj-birth-certificate", "zj-tax-registration", "zj-marriage",
    "zj-enterprise-annual-report", "zj-health-facilities",
}  # fmt: skip


def _org_id(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()  # a stable fake id


def _gateway(app: FastAPI, token: str) -> httpx.AsyncClient:
    catalog = httpx.ASGITransport(app)

    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/identity/v1/organisations":
            name = request.url.params["name"]
            return httpx.Response(200, json={"items": [{"id": _org_id(name), "name": name}]})
        assert request.url.path.startswith("/api/catalog/")
        request.url = request.url.copy_with(path=request.url.path.removeprefix("/api/catalog"))
        response = await catalog.handle_async_request(request)
        await response.aread()
        return response

    return httpx.AsyncClient(
        transport=httpx.MockTransport(route),
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_the_demo_catalogue_loads_and_loads_again(
    catalog_app: FastAPI, issuer: Issuer
) -> None:
    assert {d.code for d in DATASETS} == CODES
    said: list[str] = []
    async with _gateway(catalog_app, issuer.token(roles=["platform_admin"])) as gateway:
        assert await seed_catalog_datasets(gateway, said.append) == len(DATASETS)
        assert await seed_catalog_datasets(gateway, said.append) == len(DATASETS)
        listed = (await gateway.get("/api/catalog/v1/datasets")).json()["items"]
    assert {d["code"] for d in listed} == CODES
    assert all(d["version"] == 1 for d in listed)
    population = next(d for d in listed if d["code"] == "zj-population-basic")
    assert population["owner_org_id"] == _org_id("杭州市公安局")
    assert population["open_type"] == "not_open" and population["not_open_reason"]
    types = await outbox_types(catalog_app)
    assert types.count("pingtai.catalog.dataset.published") == len(DATASETS)

"""The demo records load through the exchange API (as through the gateway), twice."""

from __future__ import annotations

import hashlib
import uuid

import httpx
from fastapi import FastAPI

from pingtai.demo.catalog_datasets import DATASETS
from pingtai.demo.exchange_records import RECORDS, seed_exchange_records
from pingtai.demo.identity import PEOPLE
from tests.exchange.conftest import Issuer
from tests.exchange.data.conftest import deliver, published_event


def _org_id(key: str) -> str:
    return hashlib.md5(key.encode()).hexdigest()  # a stable fake id


def _gateway(app: FastAPI, token: str) -> httpx.AsyncClient:
    exchange = httpx.ASGITransport(app)

    async def route(request: httpx.Request) -> httpx.Response:
        assert request.url.path.startswith("/api/exchange/")
        request.url = request.url.copy_with(path=request.url.path.removeprefix("/api/exchange"))
        response = await exchange.handle_async_request(request)
        await response.aread()
        return response

    return httpx.AsyncClient(
        transport=httpx.MockTransport(route),
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_the_demo_records_load_and_load_again(data_app: FastAPI, issuer: Issuer) -> None:
    ids = {}
    for dataset in DATASETS:
        body = {**dataset.body, "owner_org_id": _org_id(dataset.owner)}
        ids[dataset.code] = uuid.uuid4().hex
        await deliver(data_app, published_event(ids[dataset.code], body))
    hosted = {d.code for d in DATASETS if d.body["hosting"]["mode"] == "hosted"}
    assert set(RECORDS) == hosted

    said: list[str] = []
    async with _gateway(data_app, issuer.token(roles=["platform_admin"])) as gateway:
        first = await seed_exchange_records(gateway, said.append, wait_s=1)
        second = await seed_exchange_records(gateway, said.append, wait_s=1)
        person = PEOPLE[0]
        history = await gateway.get(
            f"/api/exchange/v1/datasets/{ids['zj-medical-insurance']}/records/"
            f"{person.resident_id}/history"
        )
        legal = await gateway.get(
            f"/api/exchange/v1/open/datasets/{ids['zj-legal-entity']}/records"
        )
    assert first == second == sum(len(make()) for make in RECORDS.values())
    assert said[0].endswith(f"({first} new or changed)")
    assert said[1].endswith("(0 new or changed)")
    versions = history.json()["items"]
    assert [v["version"] for v in versions] == [1]  # the second run made no new version
    assert versions[0]["data"]["name"] == person.name
    assert len(legal.json()["items"]) == len(RECORDS["zj-legal-entity"]())


async def test_the_seed_says_when_the_exchange_lacks_the_datasets(
    data_app: FastAPI, issuer: Issuer
) -> None:
    async with _gateway(data_app, issuer.token(roles=["platform_admin"])) as gateway:
        try:
            await seed_exchange_records(gateway, lambda _: None, wait_s=0.2)
        except RuntimeError as error:
            assert "has not learnt the datasets" in str(error)
        else:  # pragma: no cover
            raise AssertionError("the seed must fail clearly without the datasets")

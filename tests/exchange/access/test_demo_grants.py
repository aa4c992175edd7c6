"""`pingtai seed --demo`'s standing grants, against the exchange in process (identity's and the
catalog's answers stubbed as the gateway would give them); a second run changes nothing."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from pingtai.demo.catalog_items import ITEMS
from pingtai.demo.exchange_grants import seed_exchange_grants, standing_grants
from pingtai.demo.identity import ORGANISATIONS
from services.exchange.datasets.models import ExchangeDataset
from tests.exchange.access.conftest import World, _dataset


class Gateway(httpx.AsyncBaseTransport):
    """Routes /api/exchange to the app; answers identity's and the catalog's look-ups."""

    def __init__(self, app: FastAPI) -> None:
        self.exchange = httpx.ASGITransport(app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/api/exchange/"):
            request.url = request.url.copy_with(path=path.removeprefix("/api/exchange"))
            return await self.exchange.handle_async_request(request)
        if path == "/api/identity/v1/organisations":
            name = request.url.params["name"]
            key = next(o.key for o in ORGANISATIONS if o.name == name)
            return httpx.Response(200, json={"items": [{"id": f"org-{key}", "name": name}]})
        if path == "/api/catalog/v1/datasets":
            code = request.url.params["code"]
            return httpx.Response(200, json={"items": [{"id": f"ds-{code}"[:32]}]})
        return httpx.Response(404)


async def test_every_items_department_gets_its_sourced_fields_once(world: World) -> None:
    wanted = standing_grants()
    fields_of: dict[str, set[str]] = {}
    for (_owner, code), names in wanted.items():
        fields_of.setdefault(code, set()).update(names)
    async with world.app.state.database.sessionmaker() as session:
        for code, known in fields_of.items():
            dataset: ExchangeDataset = _dataset(
                f"ds-{code}"[:32], "org-data",
                share_type="unconditional" if code == "zj-legal-entity" else "conditional",
                kind="resident_id", key_field=sorted(known)[0],
                fields=[(n, "string", "personal") for n in sorted(known)],
            )  # fmt: skip
            dataset.code = code
            session.add(dataset)
        await session.commit()

    said: list[str] = []
    transport = Gateway(world.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=world.platform_admin()
    ) as gateway:
        made = await seed_exchange_grants(gateway, said.append)
        again = await seed_exchange_grants(gateway, said.append)
    assert made == len(wanted) and again == 0
    grants = await world.client.get(
        "/v1/grants", params={"limit": 200}, headers=world.platform_admin()
    )
    held = {(g["requester_org_id"], g["dataset_id"]): g for g in grants.json()["items"]}
    assert len(held) == len(wanted)
    # The retirement item's department reads population and social insurance in plain.
    for item in ITEMS:
        for _key, _name, code, _applicant_field, fields in item.sourced:
            grant = held[(f"org-{item.owner}", f"ds-{code}"[:32])]
            assert grant["status"] == "granted"
            assert set(fields) <= set(grant["unmasked_fields"])
    assert said[-1].strip().startswith(f"{len(wanted)} standing grants (0 new)")

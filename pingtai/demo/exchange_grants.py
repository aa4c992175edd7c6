"""The demo province's standing access grants (共享授权): each service item's department may read
the dataset fields its materials are sourced from, in plain (the officer checks them).

Asked for through the gateway with the platform-admin token on each department's behalf, then
approved (conditional datasets, and fields asked for unmasked, wait for the owner's approval;
the platform admin gives it here). Safe to run again: a grant already in force is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from pingtai.demo.catalog_items import ITEMS, _dataset_ids, _department_ids, _expect

Say = Callable[[str], None]
PURPOSE = "办理本部门政务服务事项时核验申请人材料（一件事、最多跑一次）"
# How long seeding waits for the exchange to learn the catalogue's datasets from its events.
READ_COPY_WAIT_S = 60.0


def standing_grants() -> dict[tuple[str, str], list[str]]:
    """(department key, dataset code) -> the fields its items source from that dataset."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for item in ITEMS:
        # The applicant field names the form's field that keys the dataset, not a dataset field.
        for _key, _name, code, _applicant_field, fields in item.sourced:
            names = wanted.setdefault((item.owner, code), [])
            for name in fields:
                if name not in names:
                    names.append(name)
    return wanted


async def _wait_for_read_copy(client: httpx.AsyncClient, dataset_id: str, code: str) -> None:
    deadline = asyncio.get_running_loop().time() + READ_COPY_WAIT_S
    while True:
        found = await client.get(f"/api/exchange/v1/datasets/{dataset_id}")
        if found.status_code == 200:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(
                f"the exchange has not learnt of dataset {code} after {READ_COPY_WAIT_S:.0f}s "
                f"(is NATS up?): {found.status_code} {found.text[:200]}"
            )
        await asyncio.sleep(0.5)


async def _in_force(
    client: httpx.AsyncClient, *, org_id: str, dataset_id: str
) -> list[dict[str, Any]]:
    listed = await client.get(
        "/api/exchange/v1/grants", params={"dataset_id": dataset_id, "limit": 200}
    )
    return [
        g for g in (await _expect(listed, 200)).json()["items"]
        if g["requester_org_id"] == org_id and g["status"] in {"pending", "granted"}
    ]  # fmt: skip


async def _ensure(
    client: httpx.AsyncClient, *, org_id: str, dataset_id: str, fields: list[str]
) -> bool:
    """Make the department's grant of ``fields`` stand; whether one was made."""
    for grant in await _in_force(client, org_id=org_id, dataset_id=dataset_id):
        if grant["status"] == "granted" and set(fields) <= set(grant["unmasked_fields"]):
            return False
        if grant["status"] == "pending":
            await _expect(await client.post(f"/api/exchange/v1/grants/{grant['id']}/approve"), 200)
            return True
        # Granted, but for fewer fields (the items changed): ask anew for all of them.
        await _expect(await client.post(f"/api/exchange/v1/grants/{grant['id']}/revoke"), 200)
    valid_until = datetime.now(UTC) + timedelta(days=365)
    asked = await client.post(
        "/api/exchange/v1/grants",
        json={"dataset_id": dataset_id, "requester_org_id": org_id, "fields": fields,
              "unmasked_fields": fields, "purpose": PURPOSE,
              "valid_until": valid_until.isoformat()},
    )  # fmt: skip
    grant = (await _expect(asked, 201)).json()
    if grant["status"] == "pending":
        approved = await client.post(
            f"/api/exchange/v1/grants/{grant['id']}/approve",
            json={"reason": "演示数据：事项材料来源于本数据集"},
        )
        await _expect(approved, 200)
    return True


async def seed_exchange_grants(client: httpx.AsyncClient, say: Say) -> int:
    """Grant each item's department the dataset fields its materials need; safe to run again."""
    departments = await _department_ids(client)
    datasets = await _dataset_ids(client)
    made = 0
    wanted = standing_grants()
    for code in sorted({code for _, code in wanted}):
        await _wait_for_read_copy(client, datasets[code], code)
    for (owner, code), fields in sorted(wanted.items()):
        made += await _ensure(
            client, org_id=departments[owner], dataset_id=datasets[code], fields=fields
        )
    say(f"    {len(wanted)} standing grants ({made} new) for the items' sourced materials")
    return made

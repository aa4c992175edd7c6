"""Workflow reads for the department an application is for (``X-On-Behalf-Of``): that
department's grant decides, and the ledger names it beside workflow's client."""

from __future__ import annotations

from typing import Any

import pytest

from tests.exchange.access.conftest import (
    HRSS,
    NOBODY,
    NOBODY_ID,
    PEOPLE,
    TAX,
    ZHANG_ID,
    World,
)

APPLICATION = "application:app-20261128-0099"
DATA_BUREAU = "org-data"  # workflow's own client belongs to the big-data bureau (the demo's)


async def _batch(
    world: World, headers: dict[str, str], on_behalf_of: str | None, **body: Any
) -> Any:
    body = {"purpose": "开办企业一件事（办件 app-20261128-0099）", "basis": APPLICATION,
            "fields": ["status"], "subjects": [{"subject_key": ZHANG_ID}], **body}  # fmt: skip
    if on_behalf_of is not None:
        headers = {**headers, "X-On-Behalf-Of": on_behalf_of}
    return await world.client.post(
        f"/v1/datasets/{PEOPLE}/records:batch", json=body, headers=headers
    )


async def test_the_department_read_for_holds_the_grant_and_is_in_the_ledger(
    world: World,
) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    workflow = world.workflow(DATA_BUREAU)
    # Workflow's own organisation holds no grant: without the header the read is refused.
    alone = await _batch(world, workflow, None)
    assert alone.status_code == 403
    assert alone.json()["reason"] == "no-grant"
    found = await _batch(world, workflow, HRSS)
    assert found.status_code == 200, found.text
    [item] = found.json()["items"]
    assert (item["outcome"], item["record"]) == ("read", {"status": "active"})
    # Another department without a grant: refused, though workflow asks.
    other = await _batch(world, workflow, TAX)
    assert other.status_code == 403
    assert other.json()["reason"] == "no-grant"
    refused, read, refused_tax = await world.ledger()
    assert (refused.actor_org_id, refused.outcome) == (DATA_BUREAU, "refused")
    # Both are recorded: the client that read (workflow's) and the department it read for.
    assert (read.actor, read.client_id) == ("client-of-org-data", "tests")
    assert (read.actor_org_id, read.outcome, read.basis_kind) == (HRSS, "granted", "application")
    assert read.position == item["ledger_position"]
    assert (refused_tax.actor_org_id, refused_tax.outcome) == (TAX, "refused")


async def test_the_single_read_honours_it_too(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    await world.learn_person(NOBODY, NOBODY_ID)
    headers = {**world.workflow(DATA_BUREAU, applicant=NOBODY), "X-On-Behalf-Of": HRSS}
    response = await world.client.get(
        f"/v1/datasets/{PEOPLE}/records/{NOBODY_ID}",
        params={"purpose": "核验", "basis": APPLICATION, "fields": "status"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["found"] is False
    [entry] = await world.ledger()
    assert (entry.actor_org_id, entry.reason) == (HRSS, "not-found")


async def test_only_an_application_is_a_basis_on_behalf_of_a_department(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    response = await _batch(world, world.workflow(DATA_BUREAU), HRSS, basis="statute:《条例》")
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert (item["outcome"], item["reason"]) == ("refused", "on-behalf-needs-application")
    [entry] = await world.ledger()
    assert (entry.actor_org_id, entry.outcome) == (HRSS, "refused")


@pytest.mark.parametrize(
    "caller",
    [
        "officer",  # a person, even an officer of another department
        "system",  # a department's system without workflow's scope
    ],
)
async def test_no_one_else_may_speak_for_a_department(world: World, caller: str) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    headers = world.officer(TAX) if caller == "officer" else world.system(TAX)
    response = await _batch(world, headers, HRSS, basis="statute:《条例》")
    assert response.status_code == 403
    assert "X-On-Behalf-Of" in response.json()["detail"]
    assert await world.ledger() == []  # refused before anything was read


async def test_a_malformed_department_is_a_422_naming_the_header(world: World) -> None:
    response = await _batch(world, world.workflow(DATA_BUREAU), "not an org id!")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "X-On-Behalf-Of"]

"""An application is a basis only for the applicant's own records: workflow names the applicant
(``X-Applicant-Id``, ``X-Applicant-Org-Id``) and exchange refuses, and records, any subject that
is not theirs or their enterprise's."""

from __future__ import annotations

from typing import Any

from tests.exchange.access.conftest import (
    ENTITIES,
    HRSS,
    PEOPLE,
    WANG,
    WANG_ID,
    YUNQI,
    YUNQI_CODE,
    ZHANG,
    ZHANG_ID,
    World,
)

APPLICATION = "application:app-20261128-0101"


async def _batch(
    world: World,
    headers: dict[str, str],
    keys: list[str],
    *,
    dataset: str = PEOPLE,
    fields: list[str] | None = None,
) -> Any:
    body = {
        "purpose": "退休一件事（办件 app-20261128-0101）",
        "basis": APPLICATION,
        "fields": fields or ["status"],
        "subjects": [{"subject_key": k} for k in keys],
    }
    return await world.client.post(
        f"/v1/datasets/{dataset}/records:batch", json=body, headers=headers
    )


def _for(world: World, person: str, org: str | None = None) -> dict[str, str]:
    return world.workflow(HRSS, applicant=person, applicant_org=org)


async def test_only_the_applicants_own_subject_is_read_others_are_refused_and_recorded(
    world: World,
) -> None:
    await world.grant(PEOPLE, HRSS, ["status", "name"])
    # Wang applies, citing Zhang's resident id (as well as her own, lower-case x aside).
    response = await _batch(world, _for(world, WANG), [WANG_ID, ZHANG_ID], fields=["name"])
    assert response.status_code == 200, response.text
    own, other = response.json()["items"]
    assert (own["outcome"], own["record"]) == ("read", {"name": "王*"})
    assert (other["outcome"], other["record"], other["reason"]) == (
        "refused", None, "not-the-applicant")  # fmt: skip
    read, refused = await world.ledger()
    assert (read.outcome, read.subject_ref) == ("granted", world.refs.person(WANG_ID))
    assert (refused.outcome, refused.reason) == ("refused", "not-the-applicant")
    assert refused.subject_ref == world.refs.person(ZHANG_ID)
    assert refused.position == other["ledger_position"]


async def test_an_enterprise_agent_reads_their_enterprise_and_not_another(world: World) -> None:
    await world.grant(ENTITIES, HRSS, ["entity_name"])
    # The agent (Zhang) applying for Yunqi: Yunqi's record is theirs to cite.
    agent = _for(world, ZHANG, YUNQI)
    found = await _batch(world, agent, [YUNQI_CODE], dataset=ENTITIES, fields=["entity_name"])
    assert found.json()["items"][0]["outcome"] == "read", found.text
    # The same person applying as a citizen may not cite the enterprise.
    alone = await _batch(world, _for(world, ZHANG), [YUNQI_CODE], dataset=ENTITIES,
                         fields=["entity_name"])  # fmt: skip
    assert alone.json()["items"][0]["reason"] == "not-the-applicant"


async def test_an_applicant_exchange_has_not_learnt_of_is_refused(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    response = await _batch(world, _for(world, "person-unknown"), [ZHANG_ID])
    assert response.json()["items"][0]["reason"] == "applicant-unknown"
    [entry] = await world.ledger()
    assert (entry.outcome, entry.reason) == ("refused", "applicant-unknown")


async def test_the_single_read_checks_the_applicant_too(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    response = await world.client.get(
        f"/v1/datasets/{PEOPLE}/records/{ZHANG_ID}",
        params={"purpose": "核验", "basis": APPLICATION, "fields": "status"},
        headers=_for(world, WANG),
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "not-the-applicant"


async def test_only_workflows_scope_may_name_an_applicant_and_it_must_be_well_formed(
    world: World,
) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    officer = {**world.officer(HRSS), "X-Applicant-Id": ZHANG}
    assert (await _batch(world, officer, [ZHANG_ID])).status_code == 403
    bad = world.workflow(HRSS, applicant="bad id!")
    assert (await _batch(world, bad, [ZHANG_ID])).status_code == 422
    org_only = world.workflow(HRSS, applicant=None, applicant_org=YUNQI)
    assert (await _batch(world, org_only, [ZHANG_ID])).status_code == 422
    assert await world.ledger() == []


async def test_an_application_without_its_applicant_is_refused_and_recorded(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    nameless = world.workflow(HRSS, applicant=None)
    single = await world.client.get(
        f"/v1/datasets/{PEOPLE}/records/{ZHANG_ID}",
        params={"purpose": "核验", "basis": APPLICATION, "fields": "status"},
        headers=nameless,
    )
    assert single.status_code == 403, single.text
    assert single.headers["content-type"] == "application/problem+json"
    problem = single.json()
    assert problem["reason"] == "applicant-required"
    assert "X-Applicant-Id" in problem["detail"]
    batch = await _batch(world, nameless, [ZHANG_ID])
    assert batch.status_code == 200, batch.text
    [item] = batch.json()["items"]
    assert (item["outcome"], item["record"], item["reason"]) == (
        "refused", None, "applicant-required")  # fmt: skip
    first, second = await world.ledger()
    assert problem["ledger_positions"] == [first.position]
    assert item["ledger_position"] == second.position
    for entry in (first, second):
        assert (entry.outcome, entry.reason) == ("refused", "applicant-required")
        assert (entry.basis_kind, entry.actor_org_id) == ("application", HRSS)
        assert entry.subject_ref == world.refs.person(ZHANG_ID)
    # The same read naming Zhang as the applicant is allowed.
    named = await _batch(world, world.workflow(HRSS, applicant=ZHANG), [ZHANG_ID])
    assert named.json()["items"][0]["outcome"] == "read", named.text

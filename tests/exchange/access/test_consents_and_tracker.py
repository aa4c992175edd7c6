"""Consents (a citizen's or an enterprise's) and "who used my data"."""

from __future__ import annotations

from typing import Any

import pytest

from tests.exchange.access.conftest import (
    ENTITIES,
    HRSS,
    PEOPLE,
    TAX,
    WANG,
    WANG_ID,
    YUNQI,
    YUNQI_CODE,
    ZHANG,
    ZHANG_ID,
    World,
    in_days,
)
from tests.exchange.conftest import outbox_events


def _consent(**change: Any) -> dict[str, Any]:
    return {"grantee_org_id": HRSS, "purpose": "申请人才补贴",
            "datasets": [{"dataset_id": PEOPLE, "fields": ["name"]}],
            "valid_until": in_days(30), **change}  # fmt: skip


async def test_a_citizen_gives_lists_reads_and_revokes_their_consents(world: World) -> None:
    given = await world.client.post("/v1/consents", json=_consent(), headers=world.citizen(ZHANG))
    assert given.status_code == 201, given.text
    consent = given.json()
    assert consent["status"] == "given" and consent["subject_kind"] == "resident_id"
    assert consent["grantee_name"] == "杭州市人力资源和社会保障局"
    assert "subject_ref" not in consent
    mine = await world.client.get("/v1/consents", headers=world.citizen(ZHANG))
    assert [c["id"] for c in mine.json()["items"]] == [consent["id"]]
    theirs = await world.client.get("/v1/consents", headers=world.citizen(WANG))
    assert theirs.json()["items"] == []
    peek = await world.client.get(f"/v1/consents/{consent['id']}", headers=world.citizen(WANG))
    assert peek.status_code == 404
    steal = await world.client.post(
        f"/v1/consents/{consent['id']}/revoke", headers=world.citizen(WANG)
    )
    assert steal.status_code == 404
    revoked = await world.client.post(
        f"/v1/consents/{consent['id']}/revoke", headers=world.citizen(ZHANG)
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = await world.client.post(
        f"/v1/consents/{consent['id']}/revoke", headers=world.citizen(ZHANG)
    )
    assert again.status_code == 409
    events = await outbox_events(world.app)
    assert [t for t, _ in events] == [
        "pingtai.exchange.consent.given",
        "pingtai.exchange.consent.revoked",
    ]
    assert events[0][1]["subject_ref"] == world.refs.person(ZHANG_ID)
    assert ZHANG_ID not in str(events)


async def test_an_enterprise_agent_consents_for_their_enterprise(world: World) -> None:
    body = _consent(datasets=[{"dataset_id": ENTITIES, "fields": ["contact_phone"]}])
    given = await world.client.post("/v1/consents", json=body, headers=world.agent(YUNQI))
    assert given.status_code == 201, given.text
    assert given.json()["subject_kind"] == "credit_code"
    # The agent's enterprise datasets are keyed by credit code; a person's are not theirs.
    wrong_kind = await world.client.post(
        "/v1/consents", json=_consent(), headers=world.agent(YUNQI)
    )
    assert wrong_kind.status_code == 422
    assert wrong_kind.json()["errors"][0]["loc"] == ["body", "datasets", 0, "dataset_id"]
    own = await world.client.post(
        "/v1/consents", json={**_consent(), "on_behalf_of": "self"},
        headers=world.agent(YUNQI, sub=ZHANG),
    )  # fmt: skip
    assert own.status_code == 201  # the agent is a citizen too
    listed = await world.client.get("/v1/consents", headers=world.agent(YUNQI))
    assert [c["subject_kind"] for c in listed.json()["items"]] == ["credit_code"]


async def test_who_may_give_consent(world: World) -> None:
    anonymous = await world.client.post("/v1/consents", json=_consent())
    assert anonymous.status_code == 401
    system = await world.client.post("/v1/consents", json=_consent(), headers=world.system(HRSS))
    assert system.status_code == 403
    stranger = await world.client.post(
        "/v1/consents", json=_consent(), headers=world.citizen("person-unknown")
    )
    assert stranger.status_code == 403
    assert stranger.json()["type"].endswith("/subject-unknown")
    not_agent = await world.client.post(
        "/v1/consents", json={**_consent(), "on_behalf_of": "organisation"},
        headers=world.citizen(ZHANG),
    )  # fmt: skip
    assert not_agent.status_code == 403
    for path in ("/v1/consents", "/v1/consents/abc", "/v1/me/accesses"):
        assert (await world.client.get(path)).status_code == 401
    assert (await world.client.post("/v1/consents/abc/revoke")).status_code == 401


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"grantee_org_id": "org-nobody"}, ["body", "grantee_org_id"]),
        ({"datasets": [{"dataset_id": "ds-nope", "fields": ["name"]}]},
         ["body", "datasets", 0, "dataset_id"]),
        ({"datasets": [{"dataset_id": PEOPLE, "fields": ["shoe_size"]}]},
         ["body", "datasets", 0, "fields", 0]),
        ({"datasets": [{"dataset_id": PEOPLE, "fields": ["name"]}] * 2},
         ["body", "datasets", 1, "dataset_id"]),
        ({"datasets": []}, ["body", "datasets"]),
        ({"valid_until": in_days(-1)}, ["body", "valid_until"]),
        ({"valid_until": in_days(400)}, ["body", "valid_until"]),
        ({"on_behalf_of": "cousin"}, ["body", "on_behalf_of"]),
        ({"purpose": " "}, ["body", "purpose"]),
    ],
)  # fmt: skip
async def test_bad_consents_are_422_naming_the_field(
    world: World, change: dict[str, Any], where: list[str | int]
) -> None:
    response = await world.client.post(
        "/v1/consents", json=_consent(**change), headers=world.citizen(ZHANG)
    )
    assert response.status_code == 422, response.text
    assert where in [e["loc"] for e in response.json()["errors"]]


async def _read(
    world: World, org: str, key: str, dataset: str = PEOPLE, *, applicant: str = ZHANG,
    applicant_org: str | None = None, **params: str,
) -> int:  # fmt: skip
    response = await world.client.get(
        f"/v1/datasets/{dataset}/records/{key}",
        params={"purpose": f"{org} 核验", **params},
        headers=world.workflow(org, applicant=applicant, applicant_org=applicant_org),
    )
    return response.status_code


async def test_a_citizen_sees_every_access_to_their_data_and_nothing_else(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    await world.grant(ENTITIES, TAX, ["entity_name"])
    assert await _read(world, HRSS, ZHANG_ID, basis="application:a1") == 200
    assert await _read(world, HRSS, WANG_ID, applicant=WANG, basis="application:a2") == 200
    assert await _read(world, HRSS, ZHANG_ID) == 403  # refused: no basis
    assert await _read(world, TAX, ZHANG_ID, basis="application:a3") == 403  # no grant
    assert await _read(world, TAX, YUNQI_CODE, ENTITIES, applicant_org=YUNQI,
                       basis="application:a4") == 200  # fmt: skip

    zhang = await world.client.get("/v1/me/accesses", headers=world.citizen(ZHANG))
    assert zhang.status_code == 200, zhang.text
    items = zhang.json()["items"]
    assert [(i["organisation_id"], i["outcome"], i["basis_ref"]) for i in items] == [
        (TAX, "refused", "a3"),
        (HRSS, "refused", None),
        (HRSS, "granted", "a1"),
    ]  # newest first
    first = items[-1]
    assert first["organisation_name"] == "杭州市人力资源和社会保障局"
    assert first["dataset_id"] == PEOPLE and first["dataset_name"] == f"数据集 {PEOPLE}"
    assert first["purpose"] == f"{HRSS} 核验" and first["fields"] == ["status"]
    assert first["basis_kind"] == "application"
    assert items[1]["reason"] == "no-basis"

    wang = await world.client.get("/v1/me/accesses", headers=world.citizen(WANG))
    assert [i["basis_ref"] for i in wang.json()["items"]] == ["a2"]
    enterprise = await world.client.get("/v1/me/accesses", headers=world.agent(YUNQI))
    assert [i["basis_ref"] for i in enterprise.json()["items"]] == ["a4"]
    as_self = await world.client.get(
        "/v1/me/accesses", params={"whose": "self"}, headers=world.agent(YUNQI, sub=WANG)
    )
    assert [i["basis_ref"] for i in as_self.json()["items"]] == ["a2"]

    page = await world.client.get(
        "/v1/me/accesses", params={"limit": 2}, headers=world.citizen(ZHANG)
    )
    rest = await world.client.get(
        "/v1/me/accesses", params={"limit": 2, "cursor": page.json()["next_cursor"]},
        headers=world.citizen(ZHANG),
    )  # fmt: skip
    assert [i["basis_ref"] for i in rest.json()["items"]] == ["a1"]
    assert rest.json()["next_cursor"] is None


async def test_only_people_have_an_access_history(world: World) -> None:
    system = await world.client.get("/v1/me/accesses", headers=world.system(HRSS))
    assert system.status_code == 403
    unknown = await world.client.get("/v1/me/accesses", headers=world.citizen("person-x"))
    assert unknown.status_code == 403
    assert unknown.json()["type"].endswith("/subject-unknown")
    bad = await world.client.get(
        "/v1/me/accesses", params={"whose": "neighbour"}, headers=world.citizen(ZHANG)
    )
    assert bad.status_code == 422

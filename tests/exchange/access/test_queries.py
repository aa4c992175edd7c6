"""Record queries: grant, basis and consent decide; masking by sensitivity; every read and every
refusal is in the ledger."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.exchange.access.conftest import (
    ENTITIES,
    HRSS,
    NOBODY,
    NOBODY_ID,
    PEOPLE,
    POLICE,
    RETIRED,
    TAX,
    WANG_ID,
    YUNQI,
    YUNQI_CODE,
    ZHANG,
    ZHANG_ID,
    World,
    in_days,
)

APPLICATION = "application:app-20261128-0042"


async def _read(
    world: World, headers: dict[str, str], key: str = ZHANG_ID, dataset: str = PEOPLE,
    **params: Any,
) -> Any:  # fmt: skip
    params.setdefault("purpose", "退休一件事：核验户籍")
    return await world.client.get(
        f"/v1/datasets/{dataset}/records/{key}", params=params, headers=headers
    )


async def test_a_read_masks_by_sensitivity_and_is_recorded(world: World) -> None:
    await world.grant(
        PEOPLE, HRSS,
        ["resident_id", "name", "phone", "birth_date", "paid_months", "household_address",
         "region", "status"],
        unmasked_fields=["name"],
    )  # fmt: skip
    response = await _read(world, world.workflow(HRSS), basis=APPLICATION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["found"] is True
    assert body["record"] == {
        "resident_id": f"{ZHANG_ID[:6]}********{ZHANG_ID[-4:]}",  # personal, masked
        "name": "张三丰",  # personal, unmasked by the grant
        "phone": "138****1234",  # sensitive, masked
        "birth_date": "1988-**-**",  # sensitive date: the year
        "paid_months": None,  # sensitive number: withheld
        "household_address": "浙江省杭州市" + "*" * (len("浙江省杭州市西湖区文三路 90 号") - 6),
        "region": "330106",  # public
        "status": "active",  # internal
    }
    assert body["masked_fields"] == [
        "resident_id", "phone", "birth_date", "paid_months", "household_address",
    ]  # fmt: skip
    [entry] = await world.ledger()
    assert entry.position == body["ledger_position"]
    assert entry.outcome == "granted" and entry.reason is None
    assert entry.subject_ref == world.refs.person(ZHANG_ID)
    assert ZHANG_ID not in repr(vars(entry))  # never the number itself
    assert (entry.actor_org_id, entry.owner_org_id, entry.dataset_id) == (HRSS, POLICE, PEOPLE)
    assert (entry.basis_kind, entry.basis_ref) == ("application", "app-20261128-0042")
    assert entry.actor == "client-of-org-hrss"
    assert entry.fields == tuple(body["fields"])


async def test_fields_narrow_the_answer_and_ungranted_ones_are_refused(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["name", "region", "status"])
    narrow = await _read(world, world.workflow(HRSS), basis=APPLICATION, fields="status,region")
    assert narrow.status_code == 200
    assert narrow.json()["record"] == {"region": "330106", "status": "active"}
    assert narrow.json()["fields"] == ["region", "status"]
    wider = await _read(world, world.workflow(HRSS), basis=APPLICATION, fields="status,phone")
    assert wider.status_code == 403
    assert wider.json()["reason"] == "fields-not-granted"
    entries = await world.ledger()
    assert [e.outcome for e in entries] == ["granted", "refused"]
    assert entries[1].reason == "fields-not-granted"
    assert entries[1].fields == ("status", "phone")


async def test_a_query_without_basis_is_refused_and_recorded(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    response = await _read(world, world.officer(HRSS))
    assert response.status_code == 403
    problem = response.json()
    assert problem["type"].endswith("/access-refused")
    assert problem["reason"] == "no-basis"
    [entry] = await world.ledger()
    assert problem["ledger_positions"] == [entry.position]
    assert (entry.outcome, entry.reason, entry.basis_kind) == ("refused", "no-basis", "none")
    assert entry.subject_ref == world.refs.person(ZHANG_ID)


async def test_an_expired_grant_is_refused_and_recorded(world: World) -> None:
    grant = await world.grant(PEOPLE, HRSS, ["status"])
    assert (await _read(world, world.workflow(HRSS), basis=APPLICATION)).status_code == 200
    await world.expire_grant(grant["id"])
    response = await _read(world, world.workflow(HRSS), basis=APPLICATION)
    assert response.status_code == 403
    assert response.json()["reason"] == "grant-expired"
    entries = await world.ledger()
    assert [(e.outcome, e.reason) for e in entries] == [
        ("granted", None),
        ("refused", "grant-expired"),
    ]


async def _ask_for_status(world: World) -> httpx.Response:
    """HRSS's system asks for the status field of PEOPLE (pending: the dataset is conditional)."""
    return await world.client.post(
        "/v1/grants",
        json={"dataset_id": PEOPLE, "fields": ["status"], "purpose": "x",
              "valid_until": in_days(5)},
        headers=world.system(HRSS),
    )  # fmt: skip


async def test_a_revoked_grant_stops_authorising_at_once_and_says_so(world: World) -> None:
    grant = await world.grant(PEOPLE, HRSS, ["status"])
    assert (await _read(world, world.workflow(HRSS), basis=APPLICATION)).status_code == 200
    revoked = await world.client.post(
        f"/v1/grants/{grant['id']}/revoke", headers=world.dept_admin(POLICE)
    )
    assert revoked.status_code == 200
    response = await _read(world, world.workflow(HRSS), basis=APPLICATION)
    assert response.status_code == 403
    assert response.json()["reason"] == "grant-revoked"
    assert grant["id"] in response.json()["detail"]
    # Asking anew does not authorise while the new grant waits: the revoked one still decides.
    asked = await _ask_for_status(world)
    assert asked.status_code == 201 and asked.json()["status"] == "pending"
    waiting = await _read(world, world.workflow(HRSS), basis=APPLICATION)
    assert waiting.json()["reason"] == "grant-revoked"
    approved = await world.client.post(
        f"/v1/grants/{asked.json()['id']}/approve", headers=world.dept_admin(POLICE)
    )
    assert approved.status_code == 200, approved.text
    assert (await _read(world, world.workflow(HRSS), basis=APPLICATION)).status_code == 200
    assert [(e.outcome, e.reason) for e in await world.ledger()] == [
        ("granted", None), ("refused", "grant-revoked"), ("refused", "grant-revoked"),
        ("granted", None),
    ]  # fmt: skip


async def test_a_grant_revoked_while_pending_was_never_granted(world: World) -> None:
    asked = await _ask_for_status(world)
    assert asked.json()["status"] == "pending"
    revoked = await world.client.post(
        f"/v1/grants/{asked.json()['id']}/revoke", headers=world.system(HRSS)
    )
    assert revoked.status_code == 200, revoked.text
    response = await _read(world, world.workflow(HRSS), basis=APPLICATION)
    assert response.json()["reason"] == "no-grant"
    [entry] = await world.ledger()
    assert (entry.outcome, entry.reason) == ("refused", "no-grant")


async def test_no_grant_pending_grant_and_retired_dataset_are_refused_and_recorded(
    world: World,
) -> None:
    none = await _read(world, world.workflow(TAX), basis=APPLICATION)
    assert none.json()["reason"] == "no-grant"
    await _ask_for_status(world)
    pending = await _read(world, world.workflow(HRSS), basis=APPLICATION)
    assert pending.json()["reason"] == "no-grant"
    retired = await _read(world, world.workflow(HRSS), YUNQI_CODE, RETIRED, basis=APPLICATION)
    assert retired.status_code == 403
    assert retired.json()["reason"] == "dataset-retired"
    entries = await world.ledger()
    assert [(e.actor_org_id, e.reason) for e in entries] == [
        (TAX, "no-grant"), (HRSS, "no-grant"), (HRSS, "dataset-retired"),
    ]  # fmt: skip


async def test_only_workflows_scope_may_cite_an_application(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    response = await _read(world, world.officer(HRSS), basis=APPLICATION)
    assert response.status_code == 403
    assert response.json()["reason"] == "application-basis-not-allowed"
    [entry] = await world.ledger()
    assert (entry.outcome, entry.basis_kind) == ("refused", "application")


async def _consent(world: World, fields: list[str], *, dataset: str = PEOPLE) -> str:
    given = await world.client.post(
        "/v1/consents",
        json={"grantee_org_id": HRSS, "purpose": "申请人才补贴",
              "datasets": [{"dataset_id": dataset, "fields": fields}],
              "valid_until": in_days(30)},
        headers=world.citizen(ZHANG),
    )  # fmt: skip
    assert given.status_code == 201, given.text
    consent_id: str = given.json()["id"]
    return consent_id


async def test_personal_fields_need_consent_and_a_revoked_consent_is_refused_and_recorded(
    world: World,
) -> None:
    await world.grant(PEOPLE, HRSS, ["name", "status"], unmasked_fields=["name"])
    consent_id = await _consent(world, ["name"])
    read = await _read(world, world.officer(HRSS), basis=f"consent:{consent_id}")
    assert read.status_code == 200, read.text
    assert read.json()["record"] == {"name": "张三丰", "status": "active"}

    # The consent is Zhang's: it is no basis for reading Wang's record.
    other = await _read(world, world.officer(HRSS), WANG_ID, basis=f"consent:{consent_id}")
    assert other.status_code == 403
    assert other.json()["reason"] == "consent-not-valid"
    # Nor for another organisation, even one holding a grant.
    await world.grant(PEOPLE, TAX, ["name"])
    tax = await _read(world, world.officer(TAX), basis=f"consent:{consent_id}")
    assert tax.json()["reason"] == "consent-not-valid"

    revoked = await world.client.post(
        f"/v1/consents/{consent_id}/revoke", headers=world.citizen(ZHANG)
    )
    assert revoked.status_code == 200
    after = await _read(world, world.officer(HRSS), basis=f"consent:{consent_id}")
    assert after.status_code == 403
    assert after.json()["reason"] == "consent-revoked"
    entries = await world.ledger()
    assert [(e.outcome, e.reason) for e in entries] == [
        ("granted", None),
        ("refused", "consent-not-valid"),
        ("refused", "consent-not-valid"),
        ("refused", "consent-revoked"),
    ]
    assert entries[-1].basis_ref == consent_id
    assert entries[1].subject_ref == world.refs.person(WANG_ID)


async def test_a_consent_covers_only_the_fields_it_names(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["name", "household_address"])
    consent_id = await _consent(world, ["name"])
    response = await _read(world, world.officer(HRSS), basis=f"consent:{consent_id}")
    assert response.status_code == 403
    assert response.json()["reason"] == "consent-does-not-cover"
    narrowed = await _read(world, world.officer(HRSS), basis=f"consent:{consent_id}", fields="name")
    assert narrowed.status_code == 200
    assert narrowed.json()["record"] == {"name": "张*丰"}  # personal, masked: not unmasked
    unknown = await _read(world, world.officer(HRSS), basis="consent:no-such-consent")
    assert unknown.json()["reason"] == "consent-not-valid"


async def test_a_statute_covers_personal_fields_only_when_the_grant_names_it(
    world: World,
) -> None:
    statute = "《社会保险法》第五十七条"
    await world.grant(PEOPLE, HRSS, ["name", "status"])
    plain = await _read(world, world.officer(HRSS), basis=f"statute:{statute}", fields="status")
    assert plain.status_code == 200
    personal = await _read(world, world.officer(HRSS), basis=f"statute:{statute}")
    assert personal.status_code == 403
    assert personal.json()["reason"] == "statute-not-in-grant"
    await world.grant(PEOPLE, TAX, ["name", "status"], statutes=[statute])
    named = await _read(world, world.officer(TAX), basis=f"statute:{statute}")
    assert named.status_code == 200
    assert named.json()["record"]["name"] == "张*丰"
    entries = await world.ledger()
    assert [(e.outcome, e.basis_kind, e.basis_ref) for e in entries] == [
        ("granted", "statute", statute),
        ("refused", "statute", statute),
        ("granted", "statute", statute),
    ]


async def test_a_subject_without_a_record_is_an_answer_and_an_access(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    await world.learn_person(NOBODY, NOBODY_ID)
    response = await _read(world, world.workflow(HRSS, applicant=NOBODY), NOBODY_ID,
                           basis=APPLICATION)  # fmt: skip
    assert response.status_code == 200
    assert response.json()["found"] is False and response.json()["record"] is None
    [entry] = await world.ledger()
    assert (entry.outcome, entry.reason) == ("granted", "not-found")
    assert entry.subject_ref == world.refs.person(NOBODY_ID)


async def test_subject_keys_are_normalised_before_they_are_hashed(world: World) -> None:
    await world.grant(ENTITIES, HRSS, ["entity_name"])
    lower = await _read(world, world.workflow(HRSS, applicant_org=YUNQI), YUNQI_CODE.lower(),
                        ENTITIES,
                        basis=APPLICATION)  # fmt: skip
    assert lower.status_code == 200, lower.text
    assert lower.json()["record"] == {"entity_name": "杭州云栖科技有限公司"}
    [entry] = await world.ledger()
    assert entry.subject_ref == world.refs.enterprise(YUNQI_CODE)


async def test_a_batch_decides_and_records_each_subject(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["name", "status"], unmasked_fields=["name"])
    consent_id = await _consent(world, ["name"])
    response = await world.client.post(
        f"/v1/datasets/{PEOPLE}/records:batch",
        json={"purpose": "批量核验", "subjects": [
            {"subject_key": ZHANG_ID, "basis": f"consent:{consent_id}"},
            {"subject_key": WANG_ID, "basis": f"consent:{consent_id}"},
            {"subject_key": WANG_ID},
            {"subject_key": NOBODY_ID, "basis": "statute:《社会保险法》"},
        ], "basis": None},
        headers=world.officer(HRSS),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["outcome"], i["reason"]) for i in items] == [
        ("read", None),
        ("refused", "consent-not-valid"),
        ("refused", "no-basis"),
        ("refused", "statute-not-in-grant"),
    ]
    assert items[0]["record"] == {"name": "张三丰", "status": "active"}
    assert all(i["record"] is None for i in items[1:])
    entries = await world.ledger()
    assert [e.position for e in entries] == [i["ledger_position"] for i in items]
    assert [e.subject_ref for e in entries] == [
        world.refs.person(k) for k in (ZHANG_ID, WANG_ID, WANG_ID, NOBODY_ID)
    ]
    # Under an application, fields= narrows and a subject without a record is not_found; an
    # application covers only its applicant's own subject, so each is asked for by its own.
    await world.learn_person(NOBODY, NOBODY_ID)
    narrowed = []
    for applicant, key in ((ZHANG, ZHANG_ID), (NOBODY, NOBODY_ID)):
        answer = await world.client.post(
            f"/v1/datasets/{PEOPLE}/records:batch",
            json={"purpose": "批量核验", "basis": APPLICATION, "fields": ["status"],
                  "subjects": [{"subject_key": key}]},
            headers=world.workflow(HRSS, applicant=applicant),
        )  # fmt: skip
        narrowed += answer.json()["items"]
    assert [(i["outcome"], i["record"]) for i in narrowed] == [
        ("read", {"status": "active"}), ("not_found", None),
    ]  # fmt: skip


async def test_a_batch_without_a_grant_is_refused_whole_and_every_subject_recorded(
    world: World,
) -> None:
    response = await world.client.post(
        f"/v1/datasets/{PEOPLE}/records:batch",
        json={"purpose": "x", "basis": APPLICATION,
              "subjects": [{"subject_key": ZHANG_ID}, {"subject_key": WANG_ID}]},
        headers=world.workflow(TAX),
    )  # fmt: skip
    assert response.status_code == 403
    assert response.json()["reason"] == "no-grant"
    entries = await world.ledger()
    assert response.json()["ledger_positions"] == [e.position for e in entries]
    assert [e.subject_ref for e in entries] == [
        world.refs.person(ZHANG_ID), world.refs.person(WANG_ID),
    ]  # fmt: skip


async def test_who_may_query(world: World) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    anonymous = await _read(world, {}, basis=APPLICATION)
    assert anonymous.status_code == 401
    citizen = await _read(world, world.citizen(ZHANG), basis=APPLICATION)
    assert citizen.status_code == 403
    agent = await _read(world, world.agent("org-yunqi"), basis=APPLICATION)
    assert agent.status_code == 403
    batch = await world.client.post(
        f"/v1/datasets/{PEOPLE}/records:batch",
        json={"purpose": "x", "subjects": [{"subject_key": ZHANG_ID}]},
    )
    assert batch.status_code == 401
    # Callers who are not departments are turned away before any access is attempted.
    assert await world.ledger() == []


@pytest.mark.parametrize(
    ("path", "params", "status", "where"),
    [
        (f"/v1/datasets/{PEOPLE}/records/12345", {"basis": APPLICATION}, 422,
         ["path", "subject_key"]),
        (f"/v1/datasets/{PEOPLE}/records/{ZHANG_ID}", {"basis": "because:I-say-so"}, 422,
         ["query", "basis"]),
        (f"/v1/datasets/{PEOPLE}/records/{ZHANG_ID}", {"basis": "consent:"}, 422,
         ["query", "basis"]),
        (f"/v1/datasets/{PEOPLE}/records/{ZHANG_ID}", {"fields": "Name;drop"}, 422,
         ["query", "fields"]),
        (f"/v1/datasets/{PEOPLE}/records/{ZHANG_ID}", {"purpose": ""}, 422,
         ["query", "purpose"]),
        ("/v1/datasets/ds-nope/records/x", {"basis": APPLICATION}, 404, None),
    ],
)  # fmt: skip
async def test_bad_queries_are_problems_and_not_accesses(
    world: World, path: str, params: dict[str, str], status: int, where: list[str] | None
) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    response = await world.client.get(
        path, params={"purpose": "核验", **params}, headers=world.workflow(HRSS)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if where is not None:
        assert where in [e["loc"] for e in response.json()["errors"]]
    assert await world.ledger() == []


@pytest.mark.parametrize(
    "body",
    [
        {"purpose": "x", "subjects": []},
        {"purpose": "x", "subjects": [{"subject_key": ZHANG_ID}] * 101},
        {"purpose": "x", "subjects": [{"subject_key": "bad"}]},
        {"purpose": "x", "subjects": [{"subject_key": ZHANG_ID, "basis": "nope"}]},
        {"subjects": [{"subject_key": ZHANG_ID}]},
        {"purpose": "x", "subjects": [{"subject_key": ZHANG_ID}], "extra": 1},
    ],
)
async def test_bad_batches_are_422(world: World, body: dict[str, Any]) -> None:
    await world.grant(PEOPLE, HRSS, ["status"])
    response = await world.client.post(
        f"/v1/datasets/{PEOPLE}/records:batch", json=body, headers=world.workflow(HRSS)
    )
    assert response.status_code == 422, response.text
    assert await world.ledger() == []

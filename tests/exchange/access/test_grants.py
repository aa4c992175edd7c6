"""Access grants: every state, who may do what, bad input, events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.exchange.access.models import Grant
from tests.exchange.access.conftest import (
    ENTITIES,
    HRSS,
    MARKET,
    PEOPLE,
    POLICE,
    RETIRED,
    SECRETS,
    TAX,
    World,
    in_days,
)
from tests.exchange.conftest import outbox_events


def _ask(dataset: str, fields: list[str], **extra: Any) -> dict[str, Any]:
    return {"dataset_id": dataset, "fields": fields, "purpose": "核验参保信息",
            "valid_until": in_days(90), **extra}  # fmt: skip


async def test_an_unconditional_dataset_asked_for_plainly_is_granted_at_once(world: World) -> None:
    response = await world.client.post(
        "/v1/grants", json=_ask(ENTITIES, ["entity_name", "credit_code"]),
        headers=world.officer(HRSS),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    grant = response.json()
    assert grant["status"] == "granted"
    assert grant["decided_by"] == "auto"
    assert grant["requester_org_id"] == HRSS and grant["owner_org_id"] == MARKET
    assert grant["fields"] == ["credit_code", "entity_name"]  # in the dataset's order
    events = await outbox_events(world.app)
    assert [t for t, _ in events] == [
        "pingtai.exchange.grant.requested",
        "pingtai.exchange.grant.approved",
    ]
    assert events[1][1]["grant_id"] == grant["id"] and events[1][1]["by"] == "auto"


@pytest.mark.parametrize(
    "extra", [{"unmasked_fields": ["contact_phone"]}, {"statutes": ["《税收征收管理法》第六条"]}]
)
async def test_asking_unconditional_data_unmasked_or_by_statute_waits_for_the_owner(
    world: World, extra: dict[str, Any]
) -> None:
    response = await world.client.post(
        "/v1/grants", json=_ask(ENTITIES, ["contact_phone"], **extra), headers=world.system(HRSS)
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"


async def test_a_conditional_grant_waits_then_the_owner_approves_it(world: World) -> None:
    asked = await world.client.post(
        "/v1/grants", json=_ask(PEOPLE, ["name", "status"]), headers=world.dept_admin(HRSS)
    )
    assert asked.status_code == 201
    grant = asked.json()
    assert grant["status"] == "pending" and grant["decided_by"] is None

    # The owner's officer (not admin) may not decide; the requester may not approve itself.
    for headers in (world.officer(POLICE), world.dept_admin(HRSS)):
        denied = await world.client.post(f"/v1/grants/{grant['id']}/approve", headers=headers)
        assert denied.status_code == 403, denied.text
    shorter = in_days(10)
    approved = await world.client.post(
        f"/v1/grants/{grant['id']}/approve",
        json={"reason": "依职责核验", "valid_until": shorter},
        headers=world.dept_admin(POLICE),
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "granted"
    assert body["decided_by"] == "admin-of-org-police"
    assert body["decision_reason"] == "依职责核验"
    assert body["valid_until"][:16] == shorter[:16]
    again = await world.client.post(
        f"/v1/grants/{grant['id']}/approve", headers=world.dept_admin(POLICE)
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/grant-not-pending")
    types = [t for t, _ in await outbox_events(world.app)]
    assert types == ["pingtai.exchange.grant.requested", "pingtai.exchange.grant.approved"]


async def test_an_approval_may_not_extend_the_period(world: World) -> None:
    asked = await world.client.post(
        "/v1/grants", json=_ask(PEOPLE, ["status"]), headers=world.system(HRSS)
    )
    longer = await world.client.post(
        f"/v1/grants/{asked.json()['id']}/approve",
        json={"valid_until": in_days(400)},
        headers=world.dept_admin(POLICE),
    )
    assert longer.status_code == 422
    assert longer.json()["errors"][0]["loc"] == ["body", "valid_until"]


async def test_the_owner_refuses_with_a_reason(world: World) -> None:
    grant = (
        await world.client.post("/v1/grants", json=_ask(PEOPLE, ["name"]),
                                headers=world.system(HRSS))
    ).json()  # fmt: skip
    no_reason = await world.client.post(
        f"/v1/grants/{grant['id']}/refuse", json={}, headers=world.dept_admin(POLICE)
    )
    assert no_reason.status_code == 422
    refused = await world.client.post(
        f"/v1/grants/{grant['id']}/refuse",
        json={"reason": "用途与数据无关"},
        headers=world.platform_admin(),
    )
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "refused"
    assert refused.json()["decision_reason"] == "用途与数据无关"
    late = await world.client.post(
        f"/v1/grants/{grant['id']}/approve", headers=world.dept_admin(POLICE)
    )
    assert late.status_code == 409
    events = await outbox_events(world.app)
    assert events[-1][0] == "pingtai.exchange.grant.refused"
    assert events[-1][1]["reason"] == "用途与数据无关"


async def test_a_dataset_not_shared_is_refused_and_leaves_no_grant(world: World) -> None:
    response = await world.client.post(
        "/v1/grants", json=_ask(SECRETS, ["name"]), headers=world.system(HRSS)
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/dataset-not-shared")
    async with world.app.state.database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Grant)) == 0
    assert await outbox_events(world.app) == []


async def test_retired_and_unknown_datasets(world: World) -> None:
    retired = await world.client.post(
        "/v1/grants", json=_ask(RETIRED, ["entity_name"]), headers=world.system(HRSS)
    )
    assert retired.status_code == 409
    unknown = await world.client.post(
        "/v1/grants", json=_ask("ds-nope", ["entity_name"]), headers=world.system(HRSS)
    )
    assert unknown.status_code == 404


async def test_revocation_by_the_requester_the_owner_or_a_platform_admin(world: World) -> None:
    for who in ("requester", "owner", "admin"):
        grant = await world.grant(ENTITIES, HRSS, ["entity_name"])
        outsider = await world.client.post(
            f"/v1/grants/{grant['id']}/revoke", headers=world.dept_admin(TAX)
        )
        assert outsider.status_code == 404  # not theirs to see
        owner_officer = await world.client.post(
            f"/v1/grants/{grant['id']}/revoke", headers=world.officer(MARKET)
        )
        assert owner_officer.status_code == 403  # sees it, but only admins of the owner revoke
        headers = {
            "requester": world.officer(HRSS),
            "owner": world.dept_admin(MARKET),
            "admin": world.platform_admin(),
        }[who]
        revoked = await world.client.post(
            f"/v1/grants/{grant['id']}/revoke", json={"reason": "不再需要"}, headers=headers
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
        assert revoked.json()["revoke_reason"] == "不再需要"
        twice = await world.client.post(f"/v1/grants/{grant['id']}/revoke", headers=headers)
        assert twice.status_code == 409
    revoked_events = [d for t, d in await outbox_events(world.app) if t.endswith(".revoked")]
    assert len(revoked_events) == 3


async def test_an_expired_grant_shows_as_expired_and_may_be_asked_for_again(
    world: World,
) -> None:
    grant = await world.grant(ENTITIES, HRSS, ["entity_name"])
    duplicate = await world.client.post(
        "/v1/grants", json=_ask(ENTITIES, ["entity_name"]), headers=world.system(HRSS)
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["grant_id"] == grant["id"]
    await world.expire_grant(grant["id"])
    seen = await world.client.get(f"/v1/grants/{grant['id']}", headers=world.system(HRSS))
    assert seen.json()["status"] == "expired"
    listed = await world.client.get(
        "/v1/grants", params={"status": "expired"}, headers=world.system(HRSS)
    )
    assert [g["id"] for g in listed.json()["items"]] == [grant["id"]]
    live = await world.client.get(
        "/v1/grants", params={"status": "granted"}, headers=world.system(HRSS)
    )
    assert live.json()["items"] == []
    anew = await world.client.post(
        "/v1/grants", json=_ask(ENTITIES, ["entity_name"]), headers=world.system(HRSS)
    )
    assert anew.status_code == 201
    # The lapsed grant is now stored as expired (one open grant per pair) and still shows so.
    old = await world.client.get(f"/v1/grants/{grant['id']}", headers=world.system(HRSS))
    assert old.json()["status"] == "expired"
    listed = await world.client.get(
        "/v1/grants", params={"status": "expired"}, headers=world.system(HRSS)
    )
    assert [g["id"] for g in listed.json()["items"]] == [grant["id"]]
    async with world.app.state.database.sessionmaker() as session:
        stored = await session.get(Grant, grant["id"])
        assert stored is not None and stored.status == "expired"


@pytest.mark.parametrize("dataset", [ENTITIES, PEOPLE])  # granted at once; pending
async def test_identical_requests_at_once_open_exactly_one_grant(
    world: World, dataset: str
) -> None:
    answers = await asyncio.gather(*(
        world.client.post("/v1/grants", json=_ask(dataset, ["credit_code"] if dataset == ENTITIES
                                                   else ["status"]), headers=world.system(HRSS))
        for _ in range(6)
    ))  # fmt: skip
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
    [created] = [a.json() for a in answers if a.status_code == 201]
    for refused in (a.json() for a in answers if a.status_code == 409):
        assert refused["type"].endswith("/grant-exists")
        assert refused["grant_id"] == created["id"]
    async with world.app.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(Grant.id).where(Grant.requester_org_id == HRSS, Grant.dataset_id == dataset)
        )
        assert list(rows.scalars()) == [created["id"]]
    requested = [t for t, _ in await outbox_events(world.app) if t.endswith(".requested")]
    assert len(requested) == 1


async def test_the_database_refuses_a_second_open_grant_for_a_pair(world: World) -> None:
    grant = await world.grant(ENTITIES, HRSS, ["entity_name"])
    async with world.app.state.database.sessionmaker() as session:
        stored = await session.get(Grant, grant["id"])
        assert stored is not None
        columns = {c.key: getattr(stored, c.key) for c in Grant.__table__.columns}
        session.add(Grant(**{**columns, "id": "f" * 32, "status": "pending"}))
        with pytest.raises(IntegrityError):
            await session.flush()
        await session.rollback()
        # A closed grant beside the open one is allowed.
        session.add(Grant(**{**columns, "id": "f" * 32, "status": "revoked"}))
        await session.commit()


async def test_lists_show_each_side_its_own_grants_in_pages(world: World) -> None:
    ids = [(await world.grant(ENTITIES, org, ["entity_name"]))["id"] for org in (HRSS, TAX)]
    pending = (
        await world.client.post("/v1/grants", json=_ask(PEOPLE, ["name"]),
                                headers=world.system(HRSS))
    ).json()["id"]  # fmt: skip

    async def listed(headers: dict[str, str], **params: Any) -> list[str]:
        response = await world.client.get("/v1/grants", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [g["id"] for g in response.json()["items"]]

    assert await listed(world.officer(HRSS)) == [pending, ids[0]]  # newest first
    assert await listed(world.officer(HRSS), side="owner") == []
    assert await listed(world.dept_admin(MARKET), side="owner") == [ids[1], ids[0]]
    assert await listed(world.dept_admin(POLICE), status="pending") == [pending]
    assert await listed(world.officer(TAX)) == [ids[1]]
    assert await listed(world.platform_admin()) == [pending, ids[1], ids[0]]
    assert await listed(world.platform_admin(), dataset_id=PEOPLE) == [pending]

    first = await world.client.get(
        "/v1/grants", params={"limit": 2}, headers=world.platform_admin()
    )
    page = first.json()
    assert [g["id"] for g in page["items"]] == [pending, ids[1]]
    second = await world.client.get(
        "/v1/grants", params={"limit": 2, "cursor": page["next_cursor"]},
        headers=world.platform_admin(),
    )  # fmt: skip
    assert [g["id"] for g in second.json()["items"]] == [ids[0]]
    assert second.json()["next_cursor"] is None
    bad = await world.client.get(
        "/v1/grants", params={"cursor": "not-ours!"}, headers=world.platform_admin()
    )
    assert bad.status_code == 400


async def test_grants_are_asked_for_by_departments_and_platform_admins_on_their_behalf(
    world: World,
) -> None:
    citizen = await world.client.post(
        "/v1/grants", json=_ask(ENTITIES, ["entity_name"]), headers=world.citizen("someone")
    )
    assert citizen.status_code == 403
    agent = await world.client.post(
        "/v1/grants", json=_ask(ENTITIES, ["entity_name"]), headers=world.agent("org-yunqi")
    )
    assert agent.status_code == 403
    posing = await world.client.post(
        "/v1/grants", json=_ask(ENTITIES, ["entity_name"], requester_org_id=TAX),
        headers=world.officer(HRSS),
    )  # fmt: skip
    assert posing.status_code == 403
    for_them = await world.client.post(
        "/v1/grants", json=_ask(ENTITIES, ["entity_name"], requester_org_id=TAX),
        headers=world.platform_admin(),
    )  # fmt: skip
    assert for_them.status_code == 201
    assert for_them.json()["requester_org_id"] == TAX
    assert for_them.json()["requested_by"] == "platform-admin"


async def test_every_grant_endpoint_needs_a_token(world: World) -> None:
    anonymous = [
        world.client.post("/v1/grants", json=_ask(ENTITIES, ["entity_name"])),
        world.client.get("/v1/grants"),
        world.client.get("/v1/grants/abc"),
        world.client.post("/v1/grants/abc/approve"),
        world.client.post("/v1/grants/abc/refuse", json={"reason": "x"}),
        world.client.post("/v1/grants/abc/revoke"),
    ]
    for request in anonymous:
        response = await request
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    citizen_list = await world.client.get("/v1/grants", headers=world.citizen("someone"))
    assert citizen_list.status_code == 403
    missing = await world.client.get("/v1/grants/nope", headers=world.platform_admin())
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"fields": ["no_such_field"]}, ["body", "fields", 0]),
        ({"fields": []}, ["body", "fields"]),
        ({"fields": ["name", "name"]}, ["body", "fields"]),
        ({"unmasked_fields": ["phone"]}, ["body", "unmasked_fields", 0]),
        ({"valid_until": in_days(-1)}, ["body", "valid_until"]),
        ({"valid_until": in_days(4 * 366)}, ["body", "valid_until"]),
        ({"valid_until": "2027-01-01T00:00:00"}, ["body", "valid_until"]),
        ({"valid_until": "tomorrow"}, ["body", "valid_until"]),
        ({"purpose": ""}, ["body", "purpose"]),
        ({"purpose": "a\x00b"}, ["body", "purpose"]),
        ({"dataset_id": "../etc"}, ["body", "dataset_id"]),
        ({"surprise": True}, ["body", "surprise"]),
        ({"fields": "name"}, ["body", "fields"]),
    ],
)
async def test_bad_grant_requests_are_422_naming_the_field(
    world: World, change: dict[str, Any], where: list[str | int]
) -> None:
    response = await world.client.post(
        "/v1/grants", json={**_ask(PEOPLE, ["name"]), **change}, headers=world.system(HRSS)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert where in [e["loc"] for e in response.json()["errors"]]


async def test_malformed_json_is_a_problem_not_a_crash(world: World) -> None:
    response = await world.client.post(
        "/v1/grants", content=b"{not json", headers={**world.system(HRSS),
                                                   "content-type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 422

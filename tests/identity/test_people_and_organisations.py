"""People, organisations, memberships and regions through the identity API."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from libs.common.events.tables import TABLES
from services.identity.identifiers import make_credit_code, make_resident_id
from services.identity.people.models import User
from tests.identity.conftest import Issuer

PASSWORD = "Xihu-Lakeside-2026"
PROBLEM = "application/problem+json"


def resident_id(sequence: int, region: str = "330106") -> str:
    return make_resident_id(region, date(1990, 5, 17), sequence)


def registration(sequence: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "张三",
        "resident_id": resident_id(sequence),
        "phone": f"1381234{sequence:04d}",
        "password": PASSWORD,
    }
    body.update(overrides)
    return body


async def outbox_types(app: FastAPI) -> list[str]:
    async with app.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(TABLES.outbox.c.subject).order_by(TABLES.outbox.c.position)
        )
        return [r[0] for r in rows]


async def register_and_find(client: httpx.AsyncClient, app: FastAPI, sequence: int) -> str:
    response = await client.post("/v1/register", json=registration(sequence))
    assert response.status_code == 202, response.text
    async with app.state.database.sessionmaker() as session:
        user = (
            await session.execute(select(User).where(User.phone == f"1381234{sequence:04d}"))
        ).scalar_one()
    return user.id


async def test_registration_stores_the_id_protected_and_answers_alike_for_a_second_try(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    first = await client.post("/v1/register", json=registration(1))
    again = await client.post("/v1/register", json=registration(1, phone="13900000001"))
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()  # nothing tells the second caller an account exists

    async with identity_app.state.database.sessionmaker() as session:
        users = (await session.execute(select(User))).scalars().all()
    assert len(users) == 1
    stored = users[0]
    number = resident_id(1)
    assert stored.resident_id_masked == f"{number[:6]}********{number[-4:]}"
    assert number not in (stored.resident_id_hash or "")
    assert number not in (stored.resident_id_encrypted or "")
    assert stored.password_hash.startswith("$argon2id$")
    assert stored.acr == 1
    person_events = [t for t in await outbox_types(identity_app) if ".person." in t]
    assert person_events == [
        "pingtai.identity.person.registered",
        "pingtai.identity.person.registration_conflict",
    ]


async def test_registration_rejects_bad_identifiers_and_weak_passwords_field_by_field(
    client: httpx.AsyncClient,
) -> None:
    good = resident_id(2)
    corrupted = good[:-1] + ("0" if good[-1] != "0" else "1")
    cases = {
        "resident_id": registration(2, resident_id=corrupted),
        "phone": registration(2, phone="12345678901"),
        "password": registration(2, password="short"),
    }
    for field, body in cases.items():
        response = await client.post("/v1/register", json=body)
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert [e["loc"] for e in response.json()["errors"]] == [["body", field]]
    unknown_field = await client.post("/v1/register", json={**registration(2), "acr": 3})
    assert unknown_field.status_code == 422
    malformed = await client.post(
        "/v1/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == PROBLEM


async def test_a_person_sees_themselves_and_no_one_else(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer
) -> None:
    alice = await register_and_find(client, identity_app, 3)
    bob = await register_and_find(client, identity_app, 4)

    me = await client.get("/v1/me", headers=issuer.headers(sub=alice))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["resident_id"] == f"{resident_id(3)[:6]}********{resident_id(3)[-4:]}"
    assert body["phone"] == "13812340003"
    assert [m["role"] for m in body["memberships"]] == ["citizen"]
    revealed = await client.get("/v1/me?reveal=true", headers=issuer.headers(sub=alice))
    assert revealed.json()["resident_id"] == resident_id(3)

    other = await client.get(f"/v1/users/{bob}", headers=issuer.headers(sub=alice))
    assert other.status_code == 404
    assert other.headers["content-type"] == PROBLEM
    anonymous = await client.get("/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    search = await client.get("/v1/users", headers=issuer.headers(sub=alice))
    assert search.status_code == 403

    admin = issuer.headers(roles=["platform_admin"])
    seen = await client.get(f"/v1/users/{bob}", headers=admin)
    assert seen.json()["phone"] == "13812340004"
    assert seen.json()["resident_id"].count("*") == 8
    revealed_by_admin = await client.get(f"/v1/users/{bob}?reveal=true", headers=admin)
    assert revealed_by_admin.json()["resident_id"] == resident_id(4)
    assert (await outbox_types(identity_app))[-1] == "pingtai.identity.person.resident_id_revealed"
    found = await client.get(f"/v1/users?resident_id={resident_id(4)}", headers=admin)
    assert [p["id"] for p in found.json()["items"]] == [bob]

    renamed = await client.patch(
        "/v1/me",
        json={"name": "李四", "email": "LISI@example.cn"},
        headers=issuer.headers(sub=alice),
    )
    assert renamed.status_code == 200
    # The name changes at once; the address waits for its code (test_email_change.py).
    assert (renamed.json()["name"], renamed.json()["email"]) == ("李四", None)
    assert renamed.json()["pending_email"] == "lisi@example.cn"


async def test_verification_raises_the_assurance_level_only_for_the_entitled(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer
) -> None:
    person = await register_and_find(client, identity_app, 5)
    body = {"level": 2, "method": "public-security-check"}
    refused = await client.post(
        f"/v1/users/{person}/verification", json=body, headers=issuer.headers(sub=person)
    )
    assert refused.status_code == 403
    department_system = issuer.headers(roles=["officer"], scope="identity:verify")
    raised = await client.post(
        f"/v1/users/{person}/verification", json=body, headers=department_system
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["acr"] == 2
    lower = await client.post(
        f"/v1/users/{person}/verification",
        json={"level": 2, "method": "again"},
        headers=department_system,
    )
    assert lower.json()["acr"] == 2
    types = await outbox_types(identity_app)
    assert types.count("pingtai.identity.person.assurance_raised") == 1
    bad_level = await client.post(
        f"/v1/users/{person}/verification",
        json={"level": 5, "method": "x"},
        headers=department_system,
    )
    assert bad_level.status_code == 422


def credit_code(org_code: str, authority: str = "9", kind: str = "1") -> str:
    return make_credit_code(authority, kind, "330100", org_code)


async def test_organisations_are_registered_by_platform_admins_with_valid_codes(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer
) -> None:
    admin = issuer.headers(roles=["platform_admin"])
    enterprise = {
        "kind": "enterprise",
        "name": "杭州云栖科技有限公司",
        "region_code": "330106",
        "credit_code": credit_code("MA2AB3C4"),
    }
    refused = await client.post(
        "/v1/organisations", json=enterprise, headers=issuer.headers(roles=["citizen"])
    )
    assert refused.status_code == 403
    created = await client.post("/v1/organisations", json=enterprise, headers=admin)
    assert created.status_code == 201, created.text
    org = created.json()
    assert org["region_name"] == "西湖区"
    assert org["credit_code"] == enterprise["credit_code"]  # platform admins act for any org
    duplicate = await client.post("/v1/organisations", json=enterprise, headers=admin)
    assert duplicate.status_code == 409
    code = enterprise["credit_code"]
    corrupted = code[:-1] + ("1" if code[-1] == "0" else "0")
    bad_code = await client.post(
        "/v1/organisations", json={**enterprise, "credit_code": corrupted}, headers=admin
    )
    assert bad_code.status_code == 422
    assert bad_code.json()["errors"][0]["loc"] == ["body", "credit_code"]
    unknown_region = await client.post(
        "/v1/organisations",
        json={**enterprise, "region_code": "339999", "credit_code": credit_code("MA2AB3C5")},
        headers=admin,
    )
    assert unknown_region.status_code == 422

    outsider = await client.get(f"/v1/organisations/{org['id']}", headers=issuer.headers())
    assert outsider.json()["credit_code"].count("*") > 0
    in_hangzhou = await client.get("/v1/organisations?region_code=330100", headers=admin)
    assert [o["id"] for o in in_hangzhou.json()["items"]] == [org["id"]]
    in_ningbo = await client.get("/v1/organisations?region_code=330200", headers=admin)
    assert in_ningbo.json()["items"] == []


async def test_department_admins_manage_roles_in_their_own_department_only(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer
) -> None:
    admin = issuer.headers(roles=["platform_admin"])
    departments = []
    for index, name in enumerate(["杭州市市场监督管理局", "杭州市公安局"]):
        response = await client.post(
            "/v1/organisations",
            json={
                "kind": "department",
                "name": name,
                "region_code": "330100",
                "credit_code": make_credit_code("1", "1", "330100", f"0024821{index}"),
            },
            headers=admin,
        )
        assert response.status_code == 201, response.text
        departments.append(response.json()["id"])
    market, police = departments
    officer = await register_and_find(client, identity_app, 6)
    stranger = await register_and_find(client, identity_app, 7)
    market_admin = issuer.headers(roles=["dept_admin"], org=market)

    # A department admin cannot reach a person by an id learnt somewhere: the same 404 as
    # for an id no one has, and nothing readable afterwards.
    for user_id in (officer, "0" * 32):
        by_id = await client.post(
            "/v1/memberships",
            json={"user_id": user_id, "org_id": market, "role": "officer"},
            headers=market_admin,
        )
        assert by_id.status_code == 404, by_id.text
        assert by_id.headers["content-type"] == PROBLEM
    assert (await client.get(f"/v1/users/{officer}", headers=market_admin)).status_code == 404
    # They name a new officer by the resident id number the person gave them.
    granted = await client.post(
        "/v1/memberships",
        json={"resident_id": resident_id(6), "org_id": market, "role": "officer"},
        headers=market_admin,
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["user_id"] == officer
    unknown = await client.post(
        "/v1/memberships",
        json={"resident_id": resident_id(99), "org_id": market, "role": "officer"},
        headers=market_admin,
    )
    assert unknown.status_code == 404
    for bad in (
        # A wrong check character.
        {
            "resident_id": resident_id(6)[:-1] + "01"[resident_id(6)[-1] == "0"],
            "org_id": market,
            "role": "officer",
        },
        {"user_id": officer, "resident_id": resident_id(6), "org_id": market, "role": "officer"},
        {"org_id": market, "role": "officer"},
    ):
        refused = await client.post("/v1/memberships", json=bad, headers=market_admin)
        assert refused.status_code == 422, refused.text
    # A member of their department they may name by id (here: made a department admin).
    promoted = await client.post(
        "/v1/memberships",
        json={"user_id": officer, "org_id": market, "role": "dept_admin"},
        headers=market_admin,
    )
    assert promoted.status_code == 201, promoted.text
    assert (
        await client.delete(f"/v1/memberships/{promoted.json()['id']}", headers=market_admin)
    ).status_code == 204
    # A platform admin names anyone by id.
    by_platform = await client.post(
        "/v1/memberships",
        json={"user_id": stranger, "org_id": police, "role": "officer"},
        headers=admin,
    )
    assert by_platform.status_code == 201, by_platform.text
    again = await client.post(
        "/v1/memberships",
        json={"user_id": officer, "org_id": market, "role": "officer"},
        headers=market_admin,
    )
    assert again.status_code == 409
    elsewhere = await client.post(
        "/v1/memberships",
        json={"user_id": officer, "org_id": police, "role": "officer"},
        headers=market_admin,
    )
    assert elsewhere.status_code == 403
    by_officer = await client.post(
        "/v1/memberships",
        json={"user_id": officer, "org_id": market, "role": "dept_admin"},
        headers=issuer.headers(roles=["officer"], org=market),
    )
    assert by_officer.status_code == 403
    wrong_kind = await client.post(
        "/v1/memberships",
        json={"user_id": officer, "org_id": market, "role": "enterprise_agent"},
        headers=admin,
    )
    assert wrong_kind.status_code == 422
    platform_role_in_org = await client.post(
        "/v1/memberships",
        json={"user_id": officer, "org_id": market, "role": "auditor"},
        headers=admin,
    )
    assert platform_role_in_org.status_code == 422

    members = await client.get(f"/v1/organisations/{market}/memberships", headers=market_admin)
    assert [(m["user_id"], m["role"]) for m in members.json()["items"]] == [(officer, "officer")]
    not_theirs = await client.get(f"/v1/organisations/{police}/memberships", headers=market_admin)
    assert not_theirs.status_code == 403
    searched = await client.get("/v1/users", headers=market_admin)
    assert [p["id"] for p in searched.json()["items"]] == [officer]

    membership_id = granted.json()["id"]
    police_admin = issuer.headers(roles=["dept_admin"], org=police)
    hidden = await client.delete(f"/v1/memberships/{membership_id}", headers=police_admin)
    assert hidden.status_code == 404
    revoked = await client.delete(f"/v1/memberships/{membership_id}", headers=market_admin)
    assert revoked.status_code == 204
    types = await outbox_types(identity_app)
    assert types[-2:] == [
        "pingtai.identity.membership.granted",
        "pingtai.identity.membership.revoked",
    ]


async def test_regions_are_public_and_form_a_tree(client: httpx.AsyncClient) -> None:
    province = await client.get("/v1/regions/330000/tree")
    assert province.status_code == 200
    tree = province.json()
    assert tree["name"] == "浙江省"
    cities = {c["code"]: c for c in tree["children"]}
    assert len(cities) == 11
    assert "330106" in {d["code"] for d in cities["330100"]["children"]}
    county = await client.get("/v1/regions/330106")
    assert county.json() == {
        "code": "330106",
        "name": "西湖区",
        "name_en": county.json()["name_en"],
        "level": "county",
        "parent_code": "330100",
    }
    assert (await client.get("/v1/regions/339999")).status_code == 404
    assert (await client.get("/v1/regions/33")).status_code == 422


async def test_lists_page_with_an_opaque_cursor(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer
) -> None:
    for sequence in range(10, 15):
        await register_and_find(client, identity_app, sequence)
    admin = issuer.headers(roles=["platform_admin"])
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        url = "/v1/users?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=admin)).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    async with identity_app.state.database.sessionmaker() as session:
        total = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    assert len(seen) == len(set(seen)) == total == 5
    bad = await client.get("/v1/users?cursor=%%%", headers=admin)
    assert bad.status_code == 400
    assert bad.headers["content-type"] == PROBLEM
    too_many = await client.get("/v1/users?limit=500", headers=admin)
    assert too_many.status_code == 422
    assert json.loads(too_many.text)["errors"][0]["loc"] == ["query", "limit"]


async def test_no_one_raises_their_own_level_and_the_scope_alone_is_not_enough(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer
) -> None:
    person = await register_and_find(client, identity_app, 20)
    body = {"level": 3, "method": "in-person"}
    url = f"/v1/users/{person}/verification"
    # A citizen whose sign-in happened to be granted the scope (through a client that holds it).
    citizen_with_scope = issuer.headers(sub=person, roles=["citizen"], scope="identity:verify")
    assert (await client.post(url, json=body, headers=citizen_with_scope)).status_code == 403
    other_citizen = issuer.headers(roles=["citizen"], scope="identity:verify")
    assert (await client.post(url, json=body, headers=other_citizen)).status_code == 403
    officer_self = issuer.headers(sub=person, roles=["officer"], scope="identity:verify", acr="3")
    assert (await client.post(url, json=body, headers=officer_self)).status_code == 403
    # A department's system: client credentials, no person signed in (no acr claim).
    system = {"Authorization": f"Bearer {issuer.token(roles=[], scope='identity:verify', acr='')}"}
    raised = await client.post(url, json=body, headers=system)
    assert raised.status_code == 200, raised.text
    assert raised.json()["acr"] == 3


async def test_a_twin_registration_committed_meanwhile_answers_like_any_other(
    client: httpx.AsyncClient, identity_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.identity.people import repository as people_repository

    assert (await client.post("/v1/register", json=registration(21))).status_code == 202
    # The second request looked before the first committed: its first look finds no one.
    real_find = people_repository.find_existing
    looks: list[int] = []

    async def find_after_the_race(*args: Any, **kwargs: Any) -> Any:
        looks.append(1)
        return None if len(looks) == 1 else await real_find(*args, **kwargs)

    monkeypatch.setattr(people_repository, "find_existing", find_after_the_race)
    twin = await client.post("/v1/register", json=registration(21))
    assert twin.status_code == 202, twin.text
    assert len(looks) == 2  # the unique constraint sent it back to look again
    async with identity_app.state.database.sessionmaker() as session:
        users = (await session.execute(select(User))).scalars().all()
    assert len(users) == 1
    person_events = [t for t in await outbox_types(identity_app) if ".person." in t]
    assert person_events == [
        "pingtai.identity.person.registered",
        "pingtai.identity.person.registration_conflict",
    ]

"""Property-level authorisation (OWASP API3): an answer a caller is allowed holds only the
fields and the items that caller is entitled to — masked identity numbers, anonymised reviews,
granted fields only, and no other organisation's or person's entries in lists."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.authz.worlds import World

pytestmark = pytest.mark.asyncio(loop_scope="package")

MASKED = re.compile(r"^\d{6}\*{8}[0-9X*]{4}$")
FULL_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")


async def get(world: World, path: str, caller: str, **params: Any) -> Any:
    """``caller``'s allowed answer (it must be a 200)."""
    response = await world.http.get(path, headers=world.as_(caller), params=params)
    assert response.status_code == 200, f"{caller} GET {path}: {response.text}"
    return response.json()


async def test_resident_ids_are_masked_except_for_the_person_and_platform_admins(
    worlds: dict[str, World],
) -> None:
    identity = worlds["identity"]
    member = (await identity.target("member"))["user_id"]
    seen = await get(identity, f"/v1/users/{member}", "dept_admin:same-dept")
    assert MASKED.match(seen["resident_id"]) and not seen["resident_id_revealed"], seen
    # Asking to reveal it is refused to a department admin, and reveals nothing.
    refused = await identity.http.get(
        f"/v1/users/{member}", params={"reveal": "true"},
        headers=identity.as_("dept_admin:same-dept"),
    )  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert not FULL_RESIDENT_ID.search(refused.text)
    revealed = await get(identity, f"/v1/users/{member}", "platform_admin", reveal="true")
    assert FULL_RESIDENT_ID.match(revealed["resident_id"]) and revealed["resident_id_revealed"]
    mine = await get(identity, "/v1/me", "citizen:own")
    assert MASKED.match(mine["resident_id"]), mine


async def test_credit_codes_are_whole_only_for_those_acting_for_the_organisation(
    worlds: dict[str, World],
) -> None:
    identity = worlds["identity"]
    path = f"/v1/organisations/{identity.ids.dept_a}"
    own = await get(identity, path, "dept_admin:same-dept")
    assert "*" not in own["credit_code"] and len(own["credit_code"]) == 18
    for caller in ("dept_admin:other-dept", "officer:other-dept", "citizen:own", "evaluator"):
        seen = await get(identity, path, caller)
        assert "*" in seen["credit_code"], (caller, seen)
    listed = await get(identity, "/v1/organisations", "citizen:own")
    assert all("*" in org["credit_code"] for org in listed["items"]), listed


async def test_a_department_admin_finds_only_their_own_department_s_people(
    worlds: dict[str, World],
) -> None:
    identity = worlds["identity"]
    department_a = {
        (await identity.target("member"))["user_id"],
        identity.ids.sub("officer:same-dept"),
        identity.ids.sub("dept_admin:same-dept"),
    }
    found = await get(identity, "/v1/users", "dept_admin:other-dept", limit=200)
    ids = {person["id"] for person in found["items"]}
    assert ids and not ids & department_a, found
    assert all(MASKED.match(p["resident_id"]) for p in found["items"] if p["resident_id"])


async def test_reviews_are_anonymised_for_evaluators_and_name_the_applicant_only_to_them_and_admins(
    worlds: dict[str, World],
) -> None:
    evaluation = worlds["evaluation"]
    path = f"/v1/reviews/{(await evaluation.target('review'))['review_id']}"
    for caller in ("evaluator", "auditor"):
        seen = await get(evaluation, path, caller)
        assert seen["applicant_id"] is None and seen["application_id"] is None, seen
        assert seen["comment"] is None, seen
    department = await get(evaluation, path, "officer:same-dept")
    assert department["applicant_id"] is None and department["comment"] is not None
    for caller in ("citizen:own", "platform_admin"):
        assert (await get(evaluation, path, caller))["applicant_id"] == "citizen-1"
    # Department B's list holds none of department A's reviews.
    listed = await get(evaluation, "/v1/reviews", "dept_admin:other-dept")
    assert all(evaluation.ids.dept_a not in r["department_ids"] for r in listed["items"])
    for case in (await get(evaluation, "/v1/cases", "evaluator"))["items"]:
        assert case.get("applicant_id") is None and case.get("application_id") is None, case


async def test_a_record_read_holds_only_the_granted_fields(worlds: dict[str, World]) -> None:
    exchange = worlds["exchange"]
    target = await exchange.target("record")
    read = await get(
        exchange, "/v1/datasets/{dataset_id}/records/{subject_key}".format(**target),
        "officer:other-dept", purpose="核验身份", fields="region",
        basis="statute:《浙江省公共数据条例》第二十条",
    )  # fmt: skip
    assert set(read["record"]) <= {"region", "resident_id"}, read
    for secret in ("张三丰", "13800001234", "文三路"):
        assert secret not in str(read), read


async def test_lists_hold_only_the_caller_s_own_entries(worlds: dict[str, World]) -> None:
    workflow = worlds["workflow"]
    application_id = (await workflow.target("application"))["application_id"]
    others = await get(workflow, "/v1/applications", "citizen:other")
    assert application_id not in {a["id"] for a in others["items"]}
    inbox = await get(workflow, "/v1/tasks", "officer:other-dept", state=["open", "claimed"])
    assert application_id not in {t["application_id"] for t in inbox["items"]}
    consents = await get(worlds["exchange"], "/v1/consents", "citizen:other")
    mine = (await worlds["exchange"].target("consent"))["consent_id"]
    assert mine not in {c["id"] for c in consents["items"]}
    drafts = await get(worlds["catalog"], "/v1/item-drafts", "dept_admin:other-dept")
    assert all(d["owner_org_id"] != workflow.ids.dept_a for d in drafts["items"]), drafts
    gateway = worlds["gateway"]
    app_a = (await gateway.target("app_a"))["application_id"]
    listed = await get(gateway, "/v1/applications", "dept_admin:other-dept")
    assert app_a not in {a["id"] for a in listed["items"]}
    keys = await get(gateway, f"/v1/applications/{app_a}/keys", "dept_admin:same-dept")
    assert keys and all("key" not in k and k["hint"] for k in keys), keys

"""The process engine and the officer inbox: parallel branches, the one supplement, withdrawal,
rejection, concurrent claims and decisions, and who may act."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from tests.workflow.conftest import Issuer, outbox_events, outbox_types
from tests.workflow.helpers import (
    GOOD_FORM,
    RESIDENT_ID,
    FakeExchange,
    Item,
    make_item,
    publish_bundle,
    publish_item,
)


def citizen(issuer: Issuer, sub: str) -> dict[str, str]:
    return issuer.headers(sub=sub, roles=["citizen"], acr="2")


def officer(
    issuer: Issuer, org: str, sub: str | None = None, role: str = "officer"
) -> dict[str, str]:
    return issuer.headers(sub=sub or uuid.uuid4().hex, roles=[role], org=org, acr="3")


async def submit(api: httpx.AsyncClient, headers: dict[str, str], **target: str) -> dict[str, Any]:
    response = await api.post("/v1/applications", json={**target, "form": GOOD_FORM},
                              headers=headers)  # fmt: skip
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def inbox(
    api: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await api.get("/v1/tasks", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def decide(api: httpx.AsyncClient, headers: dict[str, str], task_id: str, decision: str,
                 comment: str | None = None) -> httpx.Response:  # fmt: skip
    body = {"decision": decision, "comment": comment}
    return await api.post(f"/v1/tasks/{task_id}/actions", json=body, headers=headers)


async def run_branch(
    api: httpx.AsyncClient, issuer: Issuer, item: Item, application_id: str
) -> None:
    """An officer of the item's department accepts, then approves."""
    headers = officer(issuer, item.owner)
    [task] = await inbox(api, headers, application_id=application_id)
    assert (await api.post(f"/v1/tasks/{task['id']}/claim", headers=headers)).status_code == 200
    assert (await decide(api, headers, task["id"], "accept", "受理")).status_code == 200
    [task] = await inbox(api, headers, application_id=application_id)
    assert task["decisions"] == ["request_supplement", "approve", "reject"]
    approved = await decide(api, headers, task["id"], "approve", "准予")
    assert approved.status_code == 200, approved.text


async def ready_item(app: FastAPI, exchange: FakeExchange, code: str) -> Item:
    """A published item whose dataset holds the applicant's record."""
    item = make_item(code)
    await publish_item(app, item)
    exchange.records[(item.dataset_id, RESIDENT_ID)] = {"name": "张伟", "status": "ok"}
    return item


async def bundle_of_four(app: FastAPI, exchange: FakeExchange) -> tuple[list[Item], str]:
    items = [make_item(f"zj-dept-{n}") for n in range(4)]
    for item in items:
        exchange.records[(item.dataset_id, RESIDENT_ID)] = {"name": "张伟", "status": "ok"}
    return items, await publish_bundle(app, items)


async def test_four_department_branches_approved_in_parallel_complete_the_bundle(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    items, bundle_id = await bundle_of_four(app, exchange)
    sub = uuid.uuid4().hex
    body = await submit(api, citizen(issuer, sub), bundle_id=bundle_id)
    assert body["status"] == "in_progress"
    assert sorted(m["state"] for m in body["materials"]) == ["fetched"] * 4
    assert {c["on_behalf_of"] for c in exchange.calls} == {i.owner for i in items}
    assert {t["department_org_id"] for t in body["tasks"]} == {i.owner for i in items}
    await asyncio.gather(*(run_branch(api, issuer, item, body["id"]) for item in items))
    done = (await api.get(f"/v1/applications/{body['id']}", headers=citizen(issuer, sub))).json()
    assert done["status"] == "completed"
    assert done["result"]["decision"] == "approved"
    assert {d["item_id"] for d in done["result"]["documents"]} == {i.item_id for i in items}
    assert {b["status"] for b in done["branches"]} == {"approved"}
    types = await outbox_types(app)
    assert types.count("pingtai.workflow.application.completed") == 1
    assert types.count("pingtai.workflow.task.completed") == 8
    assert types[-1] == "pingtai.workflow.application.completed"
    history = [h["action"] for h in done["history"]]
    assert history.count("task_completed") == 8 and history[-1] == "completed"
    # Every application event describes the application; the final one adds what evaluation
    # counts (docs/workflow.md, "Events").
    events = dict(await outbox_events(app))
    completed = events["pingtai.workflow.application.completed"]
    for data in (events["pingtai.workflow.application.submitted"], completed):
        assert (data["kind"], data["bundle_id"], data["item_id"]) == ("bundle", bundle_id, None)
        assert data["item_versions"] == [{"item_id": i.item_id, "version": 1} for i in items]
        assert data["department_org_ids"] == sorted(i.owner for i in items)
        assert (data["channel"], data["region_code"]) == ("online", "330100")
        assert (data["legal_time_limit_days"], data["promised_time_limit_days"]) == (20, 5)
        assert data["submitted_at"] is not None
    assert completed["due_at"] is not None
    assert completed["working_days_used"] == 0  # decided on the day it was submitted
    assert (completed["visits"], completed["overdue"]) == (0, False)
    assert (completed["materials_total"], completed["materials_fetched"],
            completed["materials_uploaded"]) == (4, 4, 0)  # fmt: skip


async def test_an_officer_step_and_an_admin_step_from_one_state_are_two_tasks(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = make_item("zj-admin-review", admin_review=True)
    await publish_item(app, item)
    exchange.records[(item.dataset_id, RESIDENT_ID)] = {"name": "张伟", "status": "ok"}
    body = await submit(api, citizen(issuer, uuid.uuid4().hex), item_id=item.item_id)
    clerk, admin = officer(issuer, item.owner), officer(issuer, item.owner, role="dept_admin")
    [task] = await inbox(api, clerk, application_id=body["id"])
    assert (await decide(api, clerk, task["id"], "accept")).status_code == 200
    [asks] = await inbox(api, clerk, application_id=body["id"])
    assert asks["decisions"] == ["request_supplement"]
    both = await inbox(api, admin, application_id=body["id"])  # an admin sees officers' tasks too
    [review] = [t for t in both if t["role"] == "dept_admin"]
    assert review["decisions"] == ["approve", "reject"]
    forbidden = await decide(api, clerk, review["id"], "approve")
    assert forbidden.status_code == 403
    assert (await decide(api, admin, review["id"], "approve", "准予")).status_code == 200
    assert await inbox(api, clerk, application_id=body["id"]) == []  # the ask is cancelled
    done = (await api.get(f"/v1/applications/{body['id']}", headers=admin)).json()
    assert done["status"] == "completed"
    assert sorted(t["state"] for t in done["tasks"]) == ["cancelled", "completed", "completed"]


async def test_a_counter_submission_counts_one_visit_and_the_rejected_branch_is_named(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = await ready_item(app, exchange, "zj-counter-001")
    sub = uuid.uuid4().hex
    response = await api.post(
        "/v1/applications",
        json={"item_id": item.item_id, "form": GOOD_FORM, "channel": "counter"},
        headers=citizen(issuer, sub),
    )
    assert response.status_code == 201, response.text
    assert response.json()["channel"] == "counter"
    headers = officer(issuer, item.owner)
    [task] = await inbox(api, headers, application_id=response.json()["id"])
    assert (await decide(api, headers, task["id"], "accept")).status_code == 200
    [task] = await inbox(api, headers, application_id=response.json()["id"])
    assert (await decide(api, headers, task["id"], "reject", "不符合条件")).status_code == 200
    rejected = dict(await outbox_events(app))["pingtai.workflow.application.rejected"]
    assert (rejected["channel"], rejected["visits"]) == ("counter", 1)
    assert (rejected["item_id"], rejected["refused_item_id"]) == (item.item_id, item.item_id)
    assert rejected["working_days_used"] == 0 and rejected["overdue"] is False
    bad = await api.post(
        "/v1/applications",
        json={"item_id": item.item_id, "form": GOOD_FORM, "channel": "fax"},
        headers=citizen(issuer, sub),
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "channel"]


async def test_a_refusal_in_one_branch_refuses_the_bundle_and_cancels_the_others(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    items, bundle_id = await bundle_of_four(app, exchange)
    sub = uuid.uuid4().hex
    body = await submit(api, citizen(issuer, sub), bundle_id=bundle_id)
    headers = officer(issuer, items[0].owner)
    [task] = await inbox(api, headers, application_id=body["id"])
    assert (await decide(api, headers, task["id"], "accept")).status_code == 200
    [task] = await inbox(api, headers, application_id=body["id"])
    assert (await decide(api, headers, task["id"], "reject", "不符合条件")).status_code == 200
    after = (await api.get(f"/v1/applications/{body['id']}", headers=citizen(issuer, sub))).json()
    assert after["status"] == "rejected"
    assert sorted(b["status"] for b in after["branches"]) == ["cancelled"] * 3 + ["rejected"]
    assert {t["state"] for t in after["tasks"]} == {"completed", "cancelled"}
    other = officer(issuer, items[1].owner)
    assert await inbox(api, other, application_id=body["id"]) == []
    events = dict(await outbox_events(app))
    assert events["pingtai.workflow.application.rejected"]["comment"] == "不符合条件"


async def test_the_single_supplement_round_and_a_second_request_refused(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = await ready_item(app, exchange, "zj-supp-001")
    sub = uuid.uuid4().hex
    body = await submit(api, citizen(issuer, sub), item_id=item.item_id)
    headers = officer(issuer, item.owner)
    [task] = await inbox(api, headers)
    assert (await decide(api, headers, task["id"], "accept")).status_code == 200
    [task] = await inbox(api, headers)
    asked = await decide(api, headers, task["id"], "request_supplement", "请补充联系电话")
    assert asked.status_code == 200, asked.text
    mine = (await api.get(f"/v1/applications/{body['id']}", headers=citizen(issuer, sub))).json()
    assert mine["status"] == "supplement_requested"
    assert mine["supplement"]["comment"] == "请补充联系电话"
    # The step after the supplement waits for the applicant, out of the inbox.
    assert await inbox(api, headers) == []
    answered = await api.post(
        f"/v1/applications/{body['id']}/supplement",
        json={"form": {"phone": "13900000000"}, "comment": "已补充"},
        headers=citizen(issuer, sub),
    )  # fmt: skip
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "in_progress"
    assert answered.json()["form"]["phone"] == "13900000000"
    [task] = await inbox(api, headers)
    assert task["decisions"] == ["resubmit"]
    assert (await decide(api, headers, task["id"], "resubmit")).status_code == 200
    [task] = await inbox(api, headers)
    again = await decide(api, headers, task["id"], "request_supplement", "再补一次")
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("supplement-already-requested")
    # The refused request changed nothing: the officer can still decide.
    assert (await decide(api, headers, task["id"], "approve")).status_code == 200
    final = (await api.get(f"/v1/applications/{body['id']}", headers=citizen(issuer, sub))).json()
    assert final["status"] == "completed" and final["supplement_rounds"] == 1
    assert (await outbox_types(app)).count("pingtai.workflow.application.supplement_requested") == 1


async def test_withdrawal_before_a_decision_cancels_the_tasks(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = await ready_item(app, exchange, "zj-withdraw-001")
    sub = uuid.uuid4().hex
    body = await submit(api, citizen(issuer, sub), item_id=item.item_id)
    headers = officer(issuer, item.owner)
    [task] = await inbox(api, headers)
    stranger = await api.post(f"/v1/applications/{body['id']}/withdraw",
                              headers=citizen(issuer, uuid.uuid4().hex))  # fmt: skip
    assert stranger.status_code == 404
    withdrawn = await api.post(f"/v1/applications/{body['id']}/withdraw",
                               json={"reason": "不办了"}, headers=citizen(issuer, sub))  # fmt: skip
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert {t["state"] for t in withdrawn.json()["tasks"]} == {"cancelled"}
    assert await inbox(api, headers) == []
    late = await decide(api, headers, task["id"], "accept")
    assert late.status_code == 409
    twice = await api.post(f"/v1/applications/{body['id']}/withdraw", headers=citizen(issuer, sub))
    assert twice.status_code == 409
    assert "pingtai.workflow.application.withdrawn" in await outbox_types(app)


async def test_concurrent_claims_and_decisions_on_one_task_have_one_winner(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = await ready_item(app, exchange, "zj-race-001")
    await submit(api, citizen(issuer, uuid.uuid4().hex), item_id=item.item_id)
    officers = [officer(issuer, item.owner) for _ in range(8)]
    [task] = await inbox(api, officers[0])
    claims = await asyncio.gather(
        *(api.post(f"/v1/tasks/{task['id']}/claim", headers=h) for h in officers)
    )
    assert sorted(r.status_code for r in claims) == [200] + [409] * 7
    winner = officers[[r.status_code for r in claims].index(200)]
    assert (await api.post(f"/v1/tasks/{task['id']}/unclaim", headers=winner)).status_code == 200
    decisions = await asyncio.gather(*(decide(api, h, task["id"], "accept") for h in officers))
    assert sorted(r.status_code for r in decisions) == [200] + [409] * 7
    assert (await outbox_types(app)).count("pingtai.workflow.task.completed") == 1


async def test_officers_act_only_for_their_department_and_citizens_read_only_their_own(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = await ready_item(app, exchange, "zj-auth-001")
    sub = uuid.uuid4().hex
    body = await submit(api, citizen(issuer, sub), item_id=item.item_id)
    [task] = await inbox(api, officer(issuer, item.owner))
    elsewhere = officer(issuer, uuid.uuid4().hex)
    assert await inbox(api, elsewhere) == []
    assert (await api.get(f"/v1/tasks/{task['id']}", headers=elsewhere)).status_code == 404
    assert (await api.post(f"/v1/tasks/{task['id']}/claim", headers=elsewhere)).status_code == 404
    assert (await decide(api, elsewhere, task["id"], "accept")).status_code == 404
    as_citizen = await api.get("/v1/tasks", headers=citizen(issuer, sub))
    assert as_citizen.status_code == 403
    other = citizen(issuer, uuid.uuid4().hex)
    assert (await api.get(f"/v1/applications/{body['id']}", headers=other)).status_code == 404
    assert (await api.get("/v1/applications", headers=other)).json()["items"] == []
    assert (await api.get(f"/v1/applications/{body['id']}")).status_code == 401
    # The department's officer reads the application through its task.
    mine = officer(issuer, item.owner)
    assert (await api.get(f"/v1/applications/{body['id']}", headers=mine)).status_code == 200
    wrong = await decide(api, mine, task["id"], "approve")
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["loc"] == ["body", "decision"]
    missing = await decide(api, mine, uuid.uuid4().hex, "accept")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    # The refused decisions changed nothing: the task is still open, the history as it was.
    after = (await api.get(f"/v1/applications/{body['id']}", headers=mine)).json()
    assert [t["state"] for t in after["tasks"]] == ["open"]
    assert after["history"] == body["history"] and after["updated_at"] == body["updated_at"]


async def test_the_inbox_sorts_by_deadline_and_pages_with_a_cursor(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = await ready_item(app, exchange, "zj-inbox-001")
    for _ in range(5):
        await submit(api, citizen(issuer, uuid.uuid4().hex), item_id=item.item_id)
    headers = officer(issuer, item.owner)
    first = await api.get("/v1/tasks", params={"limit": 2}, headers=headers)
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    seen = [t["id"] for t in page["items"]]
    while page["next_cursor"]:
        page = (await api.get("/v1/tasks", params={"limit": 2, "cursor": page["next_cursor"]},
                              headers=headers)).json()  # fmt: skip
        seen += [t["id"] for t in page["items"]]
    assert len(seen) == len(set(seen)) == 5
    everything = await inbox(api, headers, limit=50)
    assert [t["id"] for t in everything] == seen
    dues = [t["due_at"] for t in everything]
    assert dues == sorted(dues)
    assert all(t["service_code"] == "zj-inbox-001" for t in everything)
    mine = await inbox(api, headers, mine="true")
    assert mine == []

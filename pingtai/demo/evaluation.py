"""The demo province's evaluation: the indicator system, reviews (好差评) and a rectified case.

A platform admin stores the built-in indicator system as version 1. Then the demo applicants
review their finished demo applications (workflow's step made them): the completed one well,
the rejected one badly, which opens a rectification case (差评整改) for the department; one of
its officers replies with the fix. Evaluation learns finished applications from workflow's
events, so a review is retried until it has. Reviews carry an Idempotency-Key and a case that
has a reply is left alone, so running the seed again changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

# The demo package shares its helpers: people by phone suffix, organisation ids, sign-in.
from pingtai.demo.workflow import _expect, _org_ids, _person, sign_in
from services.evaluation.index.defaults import DEFAULT_SYSTEM

Say = Callable[[str], None]

# (applicant's phone suffix, the application status, ratings, comment); workflow's demo
# applicants 2 (completed) and 1 (rejected).
REVIEWS: tuple[tuple[int, str, dict[str, int], str], ...] = (
    (2, "completed", {"overall": 5, "speed": 5, "attitude": 5, "clarity": 4, "convenience": 5},
     "全程网上办理，没有跑腿，两天就办好了。"),
    (1, "rejected", {"overall": 2, "speed": 3, "attitude": 3, "clarity": 1, "convenience": 2},
     "办事指南没有写清经营范围的要求，被驳回后才知道。"),
)  # fmt: skip
# The officer who answers a case, by department: (phone suffix, organisation key).
RESPONDERS = {"market": (11, "market"), "police": (13, "police")}
REPLY = {
    "reply": "您好，已核实：办事指南对经营范围的说明不够清楚，给您带来不便，深表歉意。",
    "fix": "已修订办事指南，列明经营范围的禁止与限制类目，并在申报表单中加入提示。",
}


async def _store_indicator_system(client: httpx.AsyncClient) -> bool:
    """Version 1 = the built-in system, unless a version is stored already."""
    versions = (await _expect(await client.get("/api/evaluation/v1/index-systems"), 200)).json()
    if len(versions) > 1:
        return False
    body = {**DEFAULT_SYSTEM, "note": "默认指标体系（演示）"}
    await _expect(await client.post("/api/evaluation/v1/index-systems", json=body), 201)
    return True


async def _review(
    http: httpx.AsyncClient, headers: dict[str, str], application_id: str, body: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Submit a review, waiting until evaluation has learnt the application from workflow;
    (the review, whether this call made it)."""
    answer = None
    for attempt in range(40):
        answer = await http.post(
            "/api/evaluation/v1/reviews",
            json={"application_id": application_id, **body},
            headers={**headers, "Idempotency-Key": f"demo-review-{application_id}"},
        )
        if answer.status_code not in (404, 409, 503) or (
            answer.status_code == 409 and "not-finished" not in answer.text
        ):
            break
        await asyncio.sleep(min(0.25 * (attempt + 1), 2.0))
    assert answer is not None
    found: dict[str, Any] = (await _expect(answer, 200, 201)).json()
    return found, answer.status_code == 201


async def seed_evaluation(client: httpx.AsyncClient, say: Say) -> int:
    """The indicator system, reviews of the finished demo applications, a replied case."""
    made = int(await _store_indicator_system(client))
    gateway = str(client.base_url).rstrip("/")
    ids = await _org_ids(client)
    organisations = {ids[key]: key for key in RESPONDERS if key in ids}
    async with httpx.AsyncClient(base_url=gateway, timeout=30.0) as http:
        for suffix, status, ratings, comment in REVIEWS:
            headers = {"Authorization": f"Bearer {await sign_in(gateway, _person(suffix), None)}"}
            mine = (await _expect(await http.get(
                "/api/workflow/v1/applications", params={"limit": 200}, headers=headers), 200)
            ).json()["items"]  # fmt: skip
            finished = [a for a in mine if a["status"] == status]
            if not finished:
                say(f"    no {status} application of demo person {suffix}: skipped")
                continue
            review, created = await _review(
                http, headers, finished[0]["id"], {**ratings, "comment": comment}
            )
            made += int(created)
            for case_id in review["case_ids"]:
                made += await _answer(client, http, case_id, organisations)
    say(f"    indicator system and {made} review(s), case(s) and replies")
    return made


async def _answer(
    admin: httpx.AsyncClient, http: httpx.AsyncClient, case_id: str, organisations: dict[str, str]
) -> int:
    """The responsible department's officer replies to an open case; 1 if it did."""
    found = (await _expect(await admin.get(f"/api/evaluation/v1/cases/{case_id}"), 200)).json()
    department: str = found["department_id"]
    if department not in organisations:
        return 0
    suffix, _ = RESPONDERS[organisations[department]]
    gateway = str(http.base_url).rstrip("/")
    token = await sign_in(gateway, _person(suffix), department)
    headers = {"Authorization": f"Bearer {token}"}
    case = (await _expect(await http.get(f"/api/evaluation/v1/cases/{case_id}", headers=headers),
                          200)).json()  # fmt: skip
    if case["status"] != "open":
        return 0
    await _expect(
        await http.post(f"/api/evaluation/v1/cases/{case_id}/reply", json=REPLY, headers=headers),
        200,
    )
    return 1

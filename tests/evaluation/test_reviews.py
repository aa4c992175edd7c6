"""Reviews (好差评) and rectification cases (差评整改): rules, lifecycle, overdue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import Database
from services.evaluation.cases import timer
from services.evaluation.cases.models import Case
from services.evaluation.reviews import repository as reviews_repository
from services.evaluation.reviews.models import Review
from tests.evaluation import scenario
from tests.evaluation.conftest import outbox_events
from tests.evaluation.helpers import database_of, project
from tests.evaluation.scenario import CITIZEN, D1, D2, ITEM_A, OTHER_CITIZEN
from tests.identity.conftest import Issuer

GOOD = {"overall": 5, "speed": 5, "attitude": 4, "clarity": 5, "convenience": 5}
BAD = {"overall": 2, "speed": 2, "attitude": 3, "clarity": 1, "convenience": 2}


@pytest.fixture
async def finished(evaluation_app: FastAPI) -> FastAPI:
    """The scenario's applications known from workflow's (and catalog's) events."""
    await project(
        database_of(evaluation_app), scenario.catalog_events() + scenario.workflow_events()
    )
    return evaluation_app


def citizen(issuer: Issuer, sub: str = CITIZEN) -> dict[str, str]:
    return issuer.headers(sub=sub, roles=["citizen"])


def officer(issuer: Issuer, org: str = D1) -> dict[str, str]:
    return issuer.headers(roles=["officer"], org=org)


async def review(
    client: httpx.AsyncClient, issuer: Issuer, app: str, ratings: dict[str, int], **extra: Any
) -> httpx.Response:
    headers = {**citizen(issuer), **extra.pop("headers", {})}
    return await client.post(
        "/v1/reviews", json={"application_id": app, **ratings, **extra}, headers=headers
    )


async def test_the_applicant_reviews_a_finished_application_once(
    finished: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    response = await review(client, issuer, "app1", GOOD, comment="很快")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["department_ids"] == [D1]
    assert body["item_ids"] == [ITEM_A]
    assert body["region_code"] == "330106"
    assert body["applicant_id"] == CITIZEN
    assert body["case_ids"] == []  # a good review opens no case
    # One per application.
    again = await review(client, issuer, "app1", GOOD)
    assert again.status_code == 409
    assert again.json()["type"].endswith("review-exists")
    # The event carries neither the applicant nor the comment.
    events = [d for t, d in await outbox_events(finished) if t.startswith("pingtai.evaluation")]
    assert [e["review_id"] for e in events] == [body["id"]]
    assert "applicant_id" not in events[0] and "comment" not in events[0]
    assert events[0]["has_comment"] is True
    # A rejected application may be reviewed too.
    assert (await review(client, issuer, "app3", GOOD)).status_code == 201


async def test_idempotency_key_returns_the_first_review(
    finished: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    key = {"Idempotency-Key": "review-app1-1"}
    first = await review(client, issuer, "app1", GOOD, headers=key)
    assert first.status_code == 201
    repeat = await review(client, issuer, "app1", GOOD, headers=key)
    assert repeat.status_code == 200
    assert repeat.json()["id"] == first.json()["id"]
    changed = await review(client, issuer, "app1", BAD, headers=key)
    assert changed.status_code == 409
    assert changed.json()["type"].endswith("idempotency-key-reused")


async def test_an_idempotency_key_is_the_callers_not_the_applications(
    finished: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    key = {"Idempotency-Key": "review-1"}
    first = await review(client, issuer, "app1", GOOD, headers=key)
    assert first.status_code == 201
    # The same key for another application is a reused key, not a second review.
    other = await review(client, issuer, "app3", GOOD, headers=key)
    assert other.status_code == 409, other.text
    assert other.json()["type"].endswith("idempotency-key-reused")
    mine = await client.get("/v1/reviews", headers=citizen(issuer))
    assert [r["id"] for r in mine.json()["items"]] == [first.json()["id"]]
    # Another citizen's key of the same name is theirs: it replays nothing of the first.
    theirs = await client.post(
        "/v1/reviews",
        json={"application_id": "app1", **GOOD},
        headers={**citizen(issuer, OTHER_CITIZEN), **key},
    )
    assert theirs.status_code == 404, theirs.text


@pytest.mark.parametrize(
    ("second_app", "keyed", "status", "problem"),
    [
        ("app1", True, 200, None),  # the same request twice: the second gets the first review
        ("app3", True, 409, "idempotency-key-reused"),  # one key, two applications
        ("app1", False, 409, "review-exists"),  # one application, no key
    ],
)
async def test_concurrent_submissions_make_one_review(
    finished: FastAPI,
    client: httpx.AsyncClient,
    issuer: Issuer,
    monkeypatch: pytest.MonkeyPatch,
    second_app: str,
    keyed: bool,
    status: int,
    problem: str | None,
) -> None:
    # Both submissions pass every check before either inserts: the race the unique indexes
    # decide (the application's review, the caller's key).
    both_checked = asyncio.Barrier(2)
    insert = reviews_repository.insert

    async def insert_after_both_checked(session: AsyncSession, row: Review) -> Review:
        async with asyncio.timeout(30):
            await both_checked.wait()
        return await insert(session, row)

    monkeypatch.setattr(reviews_repository, "insert", insert_after_both_checked)
    headers = {"headers": {"Idempotency-Key": "race-1"}} if keyed else {}
    responses = await asyncio.gather(
        review(client, issuer, "app1", GOOD, **headers),
        review(client, issuer, second_app, GOOD, **headers),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == sorted([201, status]), [r.text for r in responses]
    winner, loser = sorted(responses, key=lambda r: r.status_code != 201)
    created = winner.json()
    if problem is None:
        assert loser.json()["id"] == created["id"]
    else:
        assert loser.headers["content-type"] == "application/problem+json"
        assert loser.json()["type"].endswith(problem)
    async with database_of(finished).sessionmaker() as session:
        stored = [tuple(r) for r in await session.execute(select(Review.id, Review.application_id))]
    assert stored == [(created["id"], created["application_id"])]
    # One review, one event.
    events = [d for t, d in await outbox_events(finished) if t.startswith("pingtai.evaluation")]
    assert [e["review_id"] for e in events] == [created["id"]]


@pytest.mark.parametrize(
    ("app", "sub", "status", "problem"),
    [
        ("app1", OTHER_CITIZEN, 404, "application-not-found"),  # not theirs
        ("nope", CITIZEN, 404, "application-not-found"),  # unknown
        ("app5", CITIZEN, 409, "application-not-finished"),  # still in progress
        ("app4", CITIZEN, 409, "application-not-finished"),  # withdrawn
    ],
)
async def test_no_review_without_a_finished_application_of_ones_own(
    finished: FastAPI,
    client: httpx.AsyncClient,
    issuer: Issuer,
    app: str,
    sub: str,
    status: int,
    problem: str,
) -> None:
    response = await client.post(
        "/v1/reviews", json={"application_id": app, **GOOD}, headers=citizen(issuer, sub)
    )
    assert response.status_code == status, response.text
    assert response.json()["type"].endswith(problem)


async def test_bad_bodies_and_roles(
    finished: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    for body in [
        {"application_id": "app1", **GOOD, "overall": 6},
        {"application_id": "app1", **GOOD, "overall": "5"},
        {"application_id": "app1", **GOOD, "stars": 5},
        {"application_id": "app1", "overall": 5},
        {"application_id": "app 1", **GOOD},
        {"application_id": "app1", **GOOD, "comment": "x" * 501},
    ]:
        response = await client.post("/v1/reviews", json=body, headers=citizen(issuer))
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    forbidden = await client.post(
        "/v1/reviews", json={"application_id": "app1", **GOOD}, headers=officer(issuer)
    )
    assert forbidden.status_code == 403
    anonymous = await client.post("/v1/reviews", json={"application_id": "app1", **GOOD})
    assert anonymous.status_code == 401


async def test_editing_within_the_window_only(
    finished: FastAPI, client: httpx.AsyncClient, issuer: Issuer
) -> None:
    created = (await review(client, issuer, "app1", GOOD)).json()
    path = f"/v1/reviews/{created['id']}"
    assert (await client.patch(path, json={"overall": 4}, headers=citizen(issuer))).json()[
        "revision"
    ] == 2
    other = await client.patch(path, json={"overall": 1}, headers=citizen(issuer, OTHER_CITIZEN))
    assert other.status_code == 404
    assert (
        await client.patch(path, json={"overall": None}, headers=citizen(issuer))
    ).status_code == 422
    # Lowering it to a bad review opens a case.
    lowered = await client.patch(path, json={"overall": 2}, headers=citizen(issuer))
    assert len(lowered.json()["case_ids"]) == 1
    async with database_of(finished).sessionmaker() as session, session.begin():
        await session.execute(
            update(Review).values(editable_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    closed = await client.patch(path, json={"overall": 5}, headers=citizen(issuer))
    assert closed.status_code == 409
    assert closed.json()["type"].endswith("review-edit-window-closed")
    types = [t for t, _ in await outbox_events(finished) if "review" in t]
    assert (
        types == ["pingtai.evaluation.review.submitted"] + ["pingtai.evaluation.review.updated"] * 2
    )


async def test_case_lifecycle(finished: FastAPI, client: httpx.AsyncClient, issuer: Issuer) -> None:
    bad = (await review(client, issuer, "app2", BAD, comment="材料说明不清")).json()
    [case_id] = bad["case_ids"]
    path = f"/v1/cases/{case_id}"
    case = (await client.get(path, headers=officer(issuer))).json()
    assert (case["department_id"], case["status"], case["overdue"]) == (D1, "open", False)
    opened = datetime.fromisoformat(case["opened_at"])
    deadline = datetime.fromisoformat(case["deadline"])
    # Five working days: never fewer than 5 calendar days, at most 5 + a weekend + the rest of day.
    assert timedelta(days=5) <= deadline - opened < timedelta(days=8, hours=1)
    # Only the responsible department replies; the applicant confirms or reopens.
    reply = {"reply": "已核实", "fix": "更新了办事指南"}
    assert (
        await client.post(f"{path}/reply", json=reply, headers=citizen(issuer))
    ).status_code == 403
    assert (
        await client.post(f"{path}/reply", json=reply, headers=officer(issuer, D2))
    ).status_code == 404
    assert (await client.post(f"{path}/confirm", headers=citizen(issuer))).status_code == 409
    assert (
        await client.post(f"{path}/reply", json={"reply": ""}, headers=officer(issuer))
    ).status_code == 422
    replied = await client.post(f"{path}/reply", json=reply, headers=officer(issuer))
    assert replied.json()["status"] == "replied"
    assert (
        await client.post(f"{path}/reply", json=reply, headers=officer(issuer))
    ).status_code == 409
    assert (await client.post(f"{path}/confirm", headers=officer(issuer))).status_code == 403
    reopened = await client.post(
        f"{path}/reopen", json={"reason": "没有改"}, headers=citizen(issuer)
    )
    assert reopened.json()["status"] == "open" and reopened.json()["reopen_count"] == 1
    await client.post(f"{path}/reply", json=reply, headers=officer(issuer))
    await client.post(f"{path}/reopen", json={"reason": "还是没有改"}, headers=citizen(issuer))
    await client.post(f"{path}/reply", json=reply, headers=officer(issuer))
    limit = await client.post(f"{path}/reopen", json={"reason": "第三次"}, headers=citizen(issuer))
    assert limit.status_code == 409
    assert limit.json()["type"].endswith("case-reopen-limit")
    confirmed = await client.post(f"{path}/confirm", headers=citizen(issuer))
    assert confirmed.json()["status"] == "confirmed"
    case_events = [(t, d) for t, d in await outbox_events(finished) if ".case." in t]
    assert [t.rsplit(".", 1)[1] for t, _ in case_events] == [
        "opened", "replied", "reopened", "replied", "reopened", "replied", "confirmed",
    ]  # fmt: skip
    assert [d["revision"] for _, d in case_events] == list(range(1, 8))
    assert all("reply" not in d and "applicant_id" not in d for _, d in case_events)


async def _force_deadline_past(database: Database) -> None:
    async with database.sessionmaker() as session, session.begin():
        await session.execute(update(Case).values(deadline=datetime.now(UTC) - timedelta(hours=1)))


async def test_overdue_is_raised_once_across_replicas(
    finished: FastAPI, client: httpx.AsyncClient, issuer: Issuer, database_url: str
) -> None:
    case_id = (await review(client, issuer, "app2", BAD)).json()["case_ids"][0]
    database = database_of(finished)
    assert await timer.tick(database) == 0  # not due yet
    await _force_deadline_past(database)
    replicas = [Database(database_url), Database(database_url)]
    try:
        raised = await asyncio.gather(*(timer.tick(r) for r in replicas for _ in range(2)))
    finally:
        for replica in replicas:
            await replica.dispose()
    assert sum(raised) == 1
    assert await timer.tick(database) == 0
    overdue = [d for t, d in await outbox_events(finished) if t.endswith("case.overdue")]
    assert [d["case_id"] for d in overdue] == [case_id]
    assert overdue[0]["overdue"] is True
    case = (await client.get(f"/v1/cases/{case_id}", headers=officer(issuer))).json()
    assert case["overdue"] is True and case["status"] == "open"
    # A replied case is not overdue; reopened, its new deadline can pass again.
    path = f"/v1/cases/{case_id}"
    await client.post(f"{path}/reply", json={"reply": "好", "fix": "改了"}, headers=officer(issuer))
    await _force_deadline_past(database)
    assert await timer.tick(database) == 0
    await client.post(f"{path}/reopen", json={"reason": "没改"}, headers=citizen(issuer))
    await _force_deadline_past(database)
    assert await timer.tick(database) == 1

"""Submitting once: forms checked field by field, materials fetched, Idempotency-Key replays."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import httpx
from fastapi import FastAPI

from tests.workflow.conftest import Issuer, outbox_types
from tests.workflow.helpers import GOOD_FORM, RESIDENT_ID, FakeExchange, make_item, publish_item


def citizen(issuer: Issuer, sub: str | None = None, acr: str = "2") -> dict[str, str]:
    return issuer.headers(sub=sub or uuid.uuid4().hex, roles=["citizen"], acr=acr)


async def test_a_submission_fetches_what_the_government_holds_and_opens_the_first_task(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = make_item("zj-test-001")
    await publish_item(app, item)
    exchange.records[(item.dataset_id, RESIDENT_ID)] = {"name": "张伟", "status": "active"}
    headers = citizen(issuer)
    response = await api.post(
        "/v1/applications", json={"item_id": item.item_id, "form": GOOD_FORM}, headers=headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "in_progress"
    assert body["item_version"] == 1
    [material] = body["materials"]
    assert material["state"] == "fetched"
    assert material["record"] == {"name": "张伟", "status": "active"}
    assert material["receipt"]["ledger_position"] == 1
    [call] = exchange.calls
    assert call["body"]["basis"] == f"application:{body['id']}"
    assert call["on_behalf_of"] == item.owner
    [task] = body["tasks"]
    assert task["state"] == "open" and task["department_org_id"] == item.owner
    assert task["due_at"] is not None and body["due_at"] is not None
    assert [h["action"] for h in body["history"]] == [
        "draft_saved", "submitted", "started", "task_created",
    ]  # fmt: skip
    # The entries were numbered in one statement: each id is its own entry's, as stored.
    stored = await api.get(f"/v1/applications/{body['id']}", headers=headers)
    assert stored.json()["history"] == body["history"]
    assert await outbox_types(app) == [
        "pingtai.workflow.application.submitted",
        "pingtai.workflow.application.started",
        "pingtai.workflow.task.created",
    ]


async def test_what_the_government_does_not_hold_is_asked_as_an_upload(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = make_item("zj-test-002", uploads=["id_photo"])
    await publish_item(app, item)
    headers = citizen(issuer)
    created = await api.post(
        "/v1/applications", json={"item_id": item.item_id, "form": GOOD_FORM}, headers=headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "awaiting_materials"
    states = {m["key"]: m["state"] for m in body["materials"]}
    assert states == {"record_zj_test_002": "requested", "id_photo": "requested"}
    base = f"/v1/applications/{body['id']}/materials"
    refused = await api.post(f"{base}/id_photo", content=b"GIF89a", headers={
        **headers, "Content-Type": "image/gif"})  # fmt: skip
    assert refused.status_code == 415, refused.text
    too_big = await api.post(f"{base}/id_photo", content=b"%PDF" + b"x" * 2000, headers={
        **headers, "Content-Type": "application/pdf"})  # fmt: skip
    assert too_big.status_code == 413, too_big.text
    first = await api.post(
        f"{base}/id_photo", params={"filename": "../../etc/passwd.pdf"}, content=b"%PDF-1.7 ok",
        headers={**headers, "Content-Type": "application/pdf"},
    )  # fmt: skip
    assert first.status_code == 200, first.text
    stored = first.json()
    assert stored["state"] == "uploaded" and stored["file_name"] == "passwd.pdf"
    assert stored["sha256"] == hashlib.sha256(b"%PDF-1.7 ok").hexdigest()
    assert stored["size_bytes"] == len(b"%PDF-1.7 ok")
    last = await api.post(f"{base}/record_zj_test_002", content=b"\x89PNG..", headers={
        **headers, "Content-Type": "image/png"})  # fmt: skip
    assert last.status_code == 200, last.text
    after = (await api.get(f"/v1/applications/{body['id']}", headers=headers)).json()
    assert after["status"] == "in_progress"
    assert len(after["tasks"]) == 1
    started = [h for h in after["history"] if h["action"] == "started"]
    assert started[0]["data"] == {"materials_fetched": 0, "materials_uploaded": 2}


async def test_bad_forms_are_422_problems_naming_each_field(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    item = make_item("zj-test-003")
    await publish_item(app, item)
    response = await api.post(
        "/v1/applications",
        json={"item_id": item.item_id,
              "form": {"resident_id": "12", "phone": 13800000000, "nickname": "x"}},
        headers=citizen(issuer),
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    fields = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert fields == {
        ("body", "form", "resident_id"),
        ("body", "form", "phone"),
        ("body", "form", "name"),
        ("body", "form", "nickname"),
    }
    neither = await api.post("/v1/applications", json={"form": {}}, headers=citizen(issuer))
    assert neither.status_code == 422


async def test_a_replayed_idempotency_key_returns_the_first_application(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    item = make_item("zj-test-004")
    await publish_item(app, item)
    sub = uuid.uuid4().hex
    body = {"item_id": item.item_id, "form": GOOD_FORM}
    headers = {**citizen(issuer, sub), "Idempotency-Key": "retry-1"}
    first, second = await asyncio.gather(
        api.post("/v1/applications", json=body, headers=headers),
        api.post("/v1/applications", json=body, headers=headers),
    )
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    third = await api.post("/v1/applications", json=body, headers=headers)
    assert third.json()["id"] == first.json()["id"]
    assert third.headers["Idempotent-Replayed"] == "true"
    other = await api.post(
        "/v1/applications", json={**body, "form": {**GOOD_FORM, "name": "李四"}}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")
    mine = (await api.get("/v1/applications", headers=citizen(issuer, sub))).json()
    assert len(mine["items"]) == 1
    # Another applicant's same key is their own.
    theirs = await api.post(
        "/v1/applications", json=body, headers={**citizen(issuer), "Idempotency-Key": "retry-1"}
    )
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


async def test_the_assurance_level_and_applicant_type_of_the_item_are_required(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    item = make_item("zj-test-005", min_acr=3)
    await publish_item(app, item)
    body = {"item_id": item.item_id, "form": GOOD_FORM}
    weak = await api.post("/v1/applications", json=body, headers=citizen(issuer, acr="2"))
    assert weak.status_code == 401 and "insufficient" in weak.json()["type"]
    officer = issuer.headers(roles=["officer"], org=uuid.uuid4().hex, acr="3")
    assert (await api.post("/v1/applications", json=body, headers=officer)).status_code == 403
    unknown = await api.post(
        "/v1/applications", json={"item_id": uuid.uuid4().hex, "form": GOOD_FORM},
        headers=citizen(issuer),
    )  # fmt: skip
    assert unknown.status_code == 404


async def test_exchange_down_the_application_is_accepted_and_fetched_later(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, exchange: FakeExchange
) -> None:
    from services.workflow.applications import service as applications_service

    item = make_item("zj-test-006")
    await publish_item(app, item)
    exchange.records[(item.dataset_id, RESIDENT_ID)] = {"name": "张伟", "status": "active"}
    exchange.down = True
    headers = citizen(issuer)
    created = await api.post(
        "/v1/applications", json={"item_id": item.item_id, "form": GOOD_FORM}, headers=headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "submitted"
    assert body["materials"][0]["state"] == "pending_fetch"
    assert body["tasks"] == []
    # Still down: nothing moves, nothing is lost.
    assert await applications_service.retry_fetches(
        app.state.database.sessionmaker, app.state.runtime) == 0  # fmt: skip
    exchange.down = False
    assert await applications_service.retry_fetches(
        app.state.database.sessionmaker, app.state.runtime) == 1  # fmt: skip
    after = (await api.get(f"/v1/applications/{body['id']}", headers=headers)).json()
    assert after["status"] == "in_progress"
    assert after["materials"][0]["state"] == "fetched"
    assert after["materials"][0]["record"] == {"name": "张伟", "status": "active"}

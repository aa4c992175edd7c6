"""Workflow fetches only the applicant's own records: it names the applicant to exchange, which
refuses (and records) a subject that is someone else's; the applicant is asked for an upload
and sees no one else's data."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from tests.exchange.access.conftest import HRSS, PEOPLE, WANG, WANG_ID, ZHANG_ID, World
from tests.workflow.applications.test_with_exchange import (
    client,
    exchange_app,
    exchange_database,
    workflow,
    world,
)
from tests.workflow.conftest import Issuer
from tests.workflow.helpers import Item, publish_item

__all__ = ["client", "exchange_app", "exchange_database", "workflow", "world"]  # fixtures


async def _item(workflow: FastAPI, world: World) -> Item:
    await world.grant(PEOPLE, HRSS, ["name", "status"], unmasked_fields=["name"])
    item = Item(item_id=uuid.uuid4().hex, owner=HRSS, dataset_id=PEOPLE, code="zj-hrss-own")
    await publish_item(workflow, item)
    return item


def _api(workflow: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(workflow), base_url="http://workflow")


def _form(resident_id: str) -> dict[str, Any]:
    return {"resident_id": resident_id, "name": "王芳", "phone": "13900005678"}


async def test_someone_elses_resident_id_is_refused_and_asked_as_an_upload(
    workflow: FastAPI, world: World, issuer: Issuer
) -> None:
    item = await _item(workflow, world)
    wang = issuer.headers(sub=WANG, roles=["citizen"], acr="2")
    async with _api(workflow) as api:
        theirs = await api.post(
            "/v1/applications", json={"item_id": item.item_id, "form": _form(ZHANG_ID)},
            headers=wang,
        )  # fmt: skip
        own = await api.post(
            "/v1/applications", json={"item_id": item.item_id, "form": _form(WANG_ID)},
            headers=wang,
        )  # fmt: skip
    assert theirs.status_code == own.status_code == 201, theirs.text
    [material] = theirs.json()["materials"]
    assert (material["state"], material["record"]) == ("requested", None)
    assert material["last_error"] == "exchange refused: not-the-applicant"
    assert theirs.json()["status"] == "awaiting_materials"
    [mine] = own.json()["materials"]
    assert (mine["state"], mine["record"]["name"]) == ("fetched", "王芳")
    refused = [e for e in await world.ledger() if e.basis_ref == theirs.json()["id"]]
    assert [(e.outcome, e.reason) for e in refused] == [("refused", "not-the-applicant")]


async def test_a_draft_edited_to_someone_elses_id_is_refused_at_submission(
    workflow: FastAPI, world: World, issuer: Issuer
) -> None:
    item = await _item(workflow, world)
    wang = issuer.headers(sub=WANG, roles=["citizen"], acr="2")
    async with _api(workflow) as api:
        draft = await api.post(
            "/v1/applications",
            json={"item_id": item.item_id, "form": _form(WANG_ID), "draft": True},
            headers=wang,
        )
        assert draft.status_code == 201, draft.text
        path = f"/v1/applications/{draft.json()['id']}"
        edited = await api.patch(path, json={"form": _form(ZHANG_ID)}, headers=wang)
        assert edited.status_code == 200, edited.text
        submitted = await api.post(f"{path}/submit", headers=wang)
    assert submitted.status_code == 200, submitted.text
    [material] = submitted.json()["materials"]
    assert (material["state"], material["record"]) == ("requested", None)


async def test_an_applicant_exchange_has_not_learnt_of_is_tried_again(
    workflow: FastAPI, world: World, issuer: Issuer
) -> None:
    item = await _item(workflow, world)
    stranger = issuer.headers(sub="person-new", roles=["citizen"], acr="2")
    async with _api(workflow) as api:
        made = await api.post(
            "/v1/applications", json={"item_id": item.item_id, "form": _form(ZHANG_ID)},
            headers=stranger,
        )  # fmt: skip
    [material] = made.json()["materials"]
    assert (made.json()["status"], material["state"]) == ("submitted", "pending_fetch")
    assert material["record"] is None and material["last_error"] == "applicant-unknown"

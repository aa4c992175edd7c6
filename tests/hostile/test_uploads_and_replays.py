"""Upload names that try to leave the uploads folder, and Idempotency-Keys replayed with
another body or by another person (workflow applications, evaluation reviews)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.common.migrations import migrate
from services.workflow.app import create_app as create_workflow
from services.workflow.applications.runtime import build_runtime
from tests.evaluation import scenario
from tests.evaluation.helpers import project
from tests.hostile.expect import problem
from tests.hostile.parts import running
from tests.identity.conftest import Issuer
from tests.workflow.applications.conftest import settings_for, verifier_for
from tests.workflow.helpers import GOOD_FORM, FakeExchange, make_item, publish_item


@dataclass
class Workflow:
    http: httpx.AsyncClient
    folder: Path
    item_id: str


@pytest.fixture
async def workflow(database_url: str, issuer: Issuer, tmp_path: Path) -> AsyncIterator[Workflow]:
    """Workflow on a fake exchange, with one published item asking for an upload."""
    await asyncio.to_thread(migrate, "services.workflow", database_url)
    settings = settings_for(database_url, str(tmp_path / "workflow"))
    app = create_workflow(settings)
    app.state.token_verifier = verifier_for(issuer)
    runtime, clients = build_runtime(
        settings, transport=httpx.MockTransport(FakeExchange().handler())
    )
    app.state.runtime = runtime
    async with app.router.lifespan_context(app):
        item = make_item("zj-hostile-upload", uploads=["id_photo"])
        await publish_item(app, item)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as http:
            yield Workflow(http, tmp_path, item.item_id)
    for client in clients:
        await client.close()


def citizen(issuer: Issuer, sub: str | None = None) -> dict[str, str]:
    return issuer.headers(sub=sub or uuid.uuid4().hex, roles=["citizen"], acr="2")


NAMES = {
    "parent-folders": "../../etc/passwd",
    "parent-folders-pdf": "../../../../../../tmp/evil.pdf",
    "absolute": "/etc/passwd",
    "windows": "..\\..\\Windows\\win.ini",
    "windows-drive": "C:\\boot.ini",
    "doubled-dots": "....//....//etc/passwd",
    "encoded": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "only-dots": "..",
    "one-dot": ".",
    "control-characters": "a\x01b\x1f.pdf",
    "newline-header-injection": "a.pdf\r\nX-Injected: 1",
    "bidi-override": "\u202efdp.exe",
    "long": "a" * 255,
}


@pytest.mark.parametrize("name", NAMES)
async def test_an_upload_name_never_leaves_the_uploads_folder(
    workflow: Workflow, issuer: Issuer, name: str
) -> None:
    headers = citizen(issuer)
    created = await workflow.http.post(
        "/v1/applications", json={"item_id": workflow.item_id, "form": GOOD_FORM}, headers=headers
    )
    assert created.status_code == 201, created.text
    before = {p for p in workflow.folder.parent.rglob("*") if p.is_file()}
    response = await workflow.http.post(
        f"/v1/applications/{created.json()['id']}/materials/id_photo",
        params={"filename": NAMES[name]}, content=b"%PDF-1.7 hostile",
        headers={**headers, "Content-Type": "application/pdf"},
    )  # fmt: skip
    if response.status_code == 422:
        problem(response, 422)
    else:
        assert response.status_code == 200, response.text
        kept = response.json()["file_name"]
        assert kept is None or (
            "/" not in kept and "\\" not in kept and kept not in {".", ".."}
            and not any(ord(c) < 32 or c in "\u202e\u202d" for c in kept)
        ), kept  # fmt: skip
    written = {p for p in workflow.folder.parent.rglob("*") if p.is_file()} - before
    uploads = workflow.folder / "workflow" / "uploads"
    assert all(uploads in p.parents for p in written), written
    assert not Path("/tmp/evil.pdf").exists()


CHANGES: dict[str, dict[str, Any]] = {
    "another-form-value": {"form": {**GOOD_FORM, "name": "李雷"}},
    "another-field": {"form": {**GOOD_FORM, "employees": 3}},
    "a-draft-instead": {"draft": True},
}


@pytest.mark.parametrize("change", CHANGES)
async def test_an_application_key_replayed_with_another_body_is_a_problem(
    workflow: Workflow, issuer: Issuer, change: str
) -> None:
    headers = {**citizen(issuer, "person-a"), "Idempotency-Key": "apply-1"}
    body = {"item_id": workflow.item_id, "form": GOOD_FORM}
    first = await workflow.http.post("/v1/applications", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await workflow.http.post("/v1/applications", json=body, headers=headers)
    assert again.status_code in (200, 201) and again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    other = await workflow.http.post(
        "/v1/applications", json={**body, **CHANGES[change]}, headers=headers
    )
    problem(other, 409, 422)
    mine = await workflow.http.get("/v1/applications", headers=headers)
    assert [a["id"] for a in mine.json()["items"]] == [first.json()["id"]]


async def test_another_persons_key_never_returns_the_first_persons_application(
    workflow: Workflow, issuer: Issuer
) -> None:
    body = {"item_id": workflow.item_id, "form": GOOD_FORM}
    key = {"Idempotency-Key": "shared-key"}
    first = await workflow.http.post(
        "/v1/applications", json=body, headers={**citizen(issuer, "person-a"), **key}
    )
    assert first.status_code == 201, first.text
    theirs = await workflow.http.post(
        "/v1/applications", json=body, headers={**citizen(issuer, "person-b"), **key}
    )
    assert theirs.status_code in (201, 409, 422), theirs.text
    if theirs.status_code == 201:
        assert theirs.json()["id"] != first.json()["id"]
    else:
        assert first.json()["id"] not in theirs.text


@pytest.mark.parametrize(
    "key", ["k" * 256, "", " ", "a\x00b", "键-🔑", "../../etc/passwd", "' OR 1=1 --"]
)
async def test_a_strange_idempotency_key_is_used_or_refused_never_a_500(
    workflow: Workflow, issuer: Issuer, key: str
) -> None:
    body = {"item_id": workflow.item_id, "form": GOOD_FORM}
    response = await workflow.http.post(
        "/v1/applications", json=body,
        headers=[(k.encode(), v.encode()) for k, v in citizen(issuer).items()]
        + [(b"Idempotency-Key", key.encode())],
    )  # fmt: skip
    if response.status_code != 201:
        problem(response, 400, 422)


GOOD = {"overall": 5, "speed": 5, "attitude": 4, "clarity": 5, "convenience": 5}
REVIEW_CHANGES: dict[str, dict[str, Any]] = {
    "worse-ratings": {"overall": 1, "speed": 1},
    "a-comment": {"comment": "<script>alert(1)</script>"},
    "another-application": {"application_id": "app3"},
}


@pytest.mark.parametrize("change", REVIEW_CHANGES)
async def test_a_review_key_replayed_with_another_body_is_a_problem(
    database_url: str, issuer: Issuer, change: str
) -> None:
    async with running("evaluation", database_url, issuer) as evaluation:
        await project(evaluation.app.state.database,
                      scenario.catalog_events() + scenario.workflow_events())  # fmt: skip
        headers = {**issuer.headers(sub=scenario.CITIZEN, roles=["citizen"]),
                   "Idempotency-Key": "review-1"}  # fmt: skip
        body = {"application_id": "app1", **GOOD}
        first = await evaluation.http.post("/v1/reviews", json=body, headers=headers)
        assert first.status_code == 201, first.text
        other = await evaluation.http.post(
            "/v1/reviews", json={**body, **REVIEW_CHANGES[change]}, headers=headers
        )
        problem(other, 409, 422)
        kept = await evaluation.http.get(f"/v1/reviews/{first.json()['id']}", headers=headers)
        assert kept.json()["overall"] == 5 and kept.json().get("comment") in (None, "")
        # Another citizen's request with the same key is theirs, never the first review.
        stranger = await evaluation.http.post(
            "/v1/reviews", json=body,
            headers={**issuer.headers(sub=scenario.OTHER_CITIZEN, roles=["citizen"]),
                     "Idempotency-Key": "review-1"},
        )  # fmt: skip
        assert first.json()["id"] not in stranger.text
        problem(stranger, 404, 409, 422)

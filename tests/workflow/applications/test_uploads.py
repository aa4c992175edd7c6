"""Uploads hold no database connection while the body streams, cut off a body that is too
slow, delete the file a new upload replaces, and keep an application within its quota."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.workflow.conftest import Issuer
from tests.workflow.helpers import GOOD_FORM, make_item, publish_item

PDF = "application/pdf"


async def _draft(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer, uploads: list[str]
) -> tuple[str, dict[str, str]]:
    item = make_item("up", uploads=uploads)
    await publish_item(app, item)
    headers = issuer.headers(sub="uploader", roles=["citizen"], acr="2")
    made = await api.post(
        "/v1/applications",
        headers=headers,
        json={"item_id": item.item_id, "form": GOOD_FORM, "draft": True},
    )
    assert made.status_code == 201, made.text
    return made.json()["id"], headers


async def _trickle(pause_s: float) -> AsyncIterator[bytes]:
    yield b"%PDF"
    await asyncio.sleep(pause_s)
    yield b"-1.4"


def _files(app: FastAPI, application_id: str) -> list[Path]:
    folder: Path = app.state.runtime.uploads_dir / application_id
    return sorted(p for p in folder.rglob("*") if p.is_file())


async def test_a_slow_upload_holds_no_database_connection(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    application_id, headers = await _draft(app, api, issuer, ["id_card"])
    pool: Any = app.state.database.engine.pool

    async def upload() -> httpx.Response:
        return await api.post(
            f"/v1/applications/{application_id}/materials/id_card",
            content=_trickle(1.0),
            headers={**headers, "content-type": PDF},
        )

    uploads = [asyncio.create_task(upload()) for _ in range(3)]
    await asyncio.sleep(0.5)
    assert pool.checkedout() == 0
    answers = await asyncio.gather(*uploads)
    assert [a.status_code for a in answers] == [200] * 3, answers[0].text
    # Three uploads of one material: the last committed is kept, the files replaced are gone.
    [kept] = _files(app, application_id)
    assert kept.read_bytes() == b"%PDF-1.4"


async def test_a_body_slower_than_the_minimum_rate_is_a_408_and_leaves_no_file(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    application_id, headers = await _draft(app, api, issuer, ["id_card"])
    app.state.runtime.upload_grace_s = 0.2
    answer = await api.post(
        f"/v1/applications/{application_id}/materials/id_card",
        content=_trickle(1.0),
        headers={**headers, "content-type": PDF},
    )
    assert answer.status_code == 408, answer.text
    assert answer.json()["type"].endswith("upload-too-slow")
    assert _files(app, application_id) == []


async def test_a_replaced_file_is_deleted_and_the_application_keeps_to_its_quota(
    app: FastAPI, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    application_id, headers = await _draft(app, api, issuer, ["id_card", "photo"])
    app.state.runtime.upload_max_bytes_per_application = 20
    path = f"/v1/applications/{application_id}/materials"
    pdf = {**headers, "content-type": PDF}
    first = await api.post(f"{path}/id_card", content=b"%PDF-first-", headers=pdf)
    second = await api.post(f"{path}/id_card", content=b"%PDF-second", headers=pdf)
    assert first.status_code == second.status_code == 200, second.text
    [kept] = _files(app, application_id)
    assert kept.read_bytes() == b"%PDF-second"
    # 11 bytes taken of 20: a 10-byte photo fits, a 12-byte one does not.
    too_big = await api.post(f"{path}/photo", content=b"%PDF-twelve", headers=pdf)
    assert too_big.status_code == 413, too_big.text
    fits = await api.post(f"{path}/photo", content=b"%PDF-ten!!"[:9], headers=pdf)
    assert fits.status_code == 200, fits.text
    assert len(_files(app, application_id)) == 2

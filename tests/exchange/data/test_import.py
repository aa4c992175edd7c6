"""Hosted records: streamed NDJSON and CSV uploads, per-row errors, upserts and versions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from libs.common.subjects import subject_refs_for
from services.exchange.ledger import LedgerEntry
from services.exchange.records.models import HostedRecordVersion, RecordImport
from services.identity.identifiers import make_credit_code, make_resident_id
from tests.exchange.conftest import Issuer, outbox_events
from tests.exchange.data.conftest import ENTERPRISES, OTHER, OWNER, PEOPLE, definition, publish

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv; charset=utf-8"}
CODES = [make_credit_code("9", "1", "330100", f"MA2{i}XL0E") for i in range(10)]
IDS = [make_resident_id("330106", date(1985, 3, 1 + i), 10 + i) for i in range(10)]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Small batches, so a test's upload crosses several transactions.
    return {"import_batch_rows": 3, "import_max_reported_errors": 4}


def ndjson(*rows: Any) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                   for r in rows).encode()  # fmt: skip


def company(index: int, **changes: Any) -> dict[str, Any]:
    return {
        "credit_code": CODES[index],
        "entity_name": f"示例企业{index}",
        "registered_capital": 100.5 + index,
        "employees": 10 + index,
        "established_on": f"2020-01-0{1 + index % 9}",
        "listed": False,
        **changes,
    }


async def push(
    api: httpx.AsyncClient, dataset_id: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return await api.post(f"/v1/datasets/{dataset_id}/records", content=body, headers=headers)


async def test_good_rows_are_kept_and_bad_rows_reported_by_line_and_field(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    body = ndjson(
        company(0),
        company(1, registered_capital="lots"),  # line 2: wrong type
        company(2, credit_code=CODES[2][:-1] + ("0" if CODES[2][-1] != "0" else "1")),  # check
        "",  # a blank line is skipped but counted
        "{not json",  # line 5
        company(3, nickname="x"),  # line 6: unknown field
        {"entity_name": "无代码"},  # line 7: no subject key
        company(4, employees=True),  # line 8: a boolean is not an integer
        company(5, established_on="2020-02-30"),  # line 9
        [1, 2],  # line 10
        company(6, credit_code=CODES[6].lower()),  # normalised
    )
    response = await push(api, dataset_id, body, {**owner_headers, **NDJSON})
    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["received"], summary["inserted"], summary["rejected"]) == (10, 2, 8)
    assert summary["errors_not_shown"] == 4
    assert [(e["line"], e["field"]) for e in summary["errors"]] == [
        (2, "registered_capital"),
        (3, "credit_code"),
        (5, None),
        (6, "nickname"),
    ]
    assert "check character" in summary["errors"][1]["reason"]
    assert "must be a number" in summary["errors"][0]["reason"]

    history = await api.get(
        f"/v1/datasets/{dataset_id}/records/{CODES[6].lower()}/history", headers=owner_headers
    )
    assert history.status_code == 200, history.text
    assert history.json()["items"][0]["data"]["credit_code"] == CODES[6]


async def test_every_reason_a_row_is_refused(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    data_app.state.settings = data_app.state.settings.model_copy(
        update={"import_max_reported_errors": 100}
    )
    dataset_id = await publish(data_app, PEOPLE)
    rows = [
        {"id_number": IDS[0], "name": "张三", "birth_date": "1985-03-01",
         "registered_at": "2020-01-01T08:00:00+08:00"},
        {"id_number": "330106198513010101"},  # month 13
        {"id_number": IDS[1], "registered_at": "2020-01-01T08:00:00"},  # no offset
        {"id_number": IDS[2], "name": 5},
        {"id_number": IDS[3], "name": "x\u0000y"},
        {"id_number": None, "name": "无证号"},
    ]  # fmt: skip
    response = await push(api, dataset_id, ndjson(*rows), {**owner_headers, **NDJSON})
    summary = response.json()
    assert (summary["inserted"], summary["rejected"]) == (1, 5), summary
    reasons = {(e["line"], e["field"]): e["reason"] for e in summary["errors"]}
    assert "birth date" in reasons[(2, "id_number")]
    assert "offset" in reasons[(3, "registered_at")]
    assert reasons[(4, "name")] == "must be a string"
    assert "NUL" in reasons[(5, "name")]
    assert reasons[(6, "id_number")] == "the subject key is required"


async def test_upserts_version_changes_and_leave_unchanged_rows_alone(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    first = await push(api, dataset_id, ndjson(*[company(i) for i in range(7)]),
                       {**owner_headers, **NDJSON})  # fmt: skip
    assert first.json()["inserted"] == 7
    # Same rows again, two changed, one of them twice in the same upload.
    again = [company(i) for i in range(7)]
    again[2] = company(2, entity_name="改名一")
    again.append(company(2, entity_name="改名二"))
    again[5] = company(5, listed=True)
    second = (await push(api, dataset_id, ndjson(*again), {**owner_headers, **NDJSON})).json()
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 3, 5), second

    history = await api.get(
        f"/v1/datasets/{dataset_id}/records/{CODES[2]}/history", headers=owner_headers
    )
    items = history.json()["items"]
    assert [(v["version"], v["data"]["entity_name"]) for v in items] == [
        (3, "改名二"), (2, "改名一"), (1, "示例企业2"),
    ]  # fmt: skip
    assert all(v["dataset_version"] == 1 for v in items)
    async with data_app.state.database.sessionmaker() as session:
        versions = await session.scalar(
            select(func.count()).select_from(HostedRecordVersion)
            .where(HostedRecordVersion.dataset_id == dataset_id)
        )  # fmt: skip
        imports = (await session.scalars(
            select(RecordImport).where(RecordImport.dataset_id == dataset_id)
            .order_by(RecordImport.started_at)
        )).all()  # fmt: skip
    assert versions == 7 + 3
    assert [(i.status, i.received, i.updated) for i in imports] == [
        ("completed", 7, 0), ("completed", 8, 3),
    ]  # fmt: skip
    page = await api.get(
        f"/v1/datasets/{dataset_id}/records/{CODES[2]}/history?limit=1", headers=owner_headers
    )
    cursor = page.json()["next_cursor"]
    older = await api.get(
        f"/v1/datasets/{dataset_id}/records/{CODES[2]}/history?limit=2&cursor={cursor}",
        headers=owner_headers,
    )
    assert [v["version"] for v in older.json()["items"]] == [2, 1]


async def test_csv_with_quotes_line_breaks_and_empty_cells(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    body = (
        "\ufeffcredit_code,entity_name,registered_capital,employees,listed\r\n"
        f'{CODES[0]},"示例, ""有限"" 公司",1.5,3,true\r\n'
        f'{CODES[1]},"两行\r\n名称",,,no\r\n'  # a quoted line break; empty cells are null
        f"{CODES[2]},坏数字,abc,3,true\r\n"  # line 5
        f"{CODES[3]},少一列\r\n"  # line 6
        f"{CODES[4]},好的,2,x,maybe\r\n"  # line 7: two bad cells
    ).encode()
    response = await push(api, dataset_id, body, {**owner_headers, **CSV})
    summary = response.json()
    assert (summary["received"], summary["inserted"], summary["rejected"]) == (5, 2, 3), summary
    assert [(e["line"], e["field"]) for e in summary["errors"]] == [
        (5, "registered_capital"), (6, None), (7, "employees"), (7, "listed"),
    ]  # fmt: skip
    history = await api.get(
        f"/v1/datasets/{dataset_id}/records/{CODES[1]}/history", headers=owner_headers
    )
    data = history.json()["items"][0]["data"]
    assert data["entity_name"] == "两行\r\n名称"
    assert (data["registered_capital"], data["employees"], data["listed"]) == (None, None, False)
    first = await api.get(
        f"/v1/datasets/{dataset_id}/records/{CODES[0]}/history", headers=owner_headers
    )
    assert first.json()["items"][0]["data"]["entity_name"] == '示例, "有限" 公司'


async def test_a_csv_header_with_unknown_or_repeated_fields_is_refused_whole(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    unknown = await push(api, dataset_id, b"credit_code,salary\n", {**owner_headers, **CSV})
    repeated = await push(api, dataset_id, b"credit_code,credit_code\n", {**owner_headers, **CSV})
    empty = await push(api, dataset_id, b"", {**owner_headers, **CSV})
    for response in (unknown, repeated, empty):
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("upload-refused")
    assert "salary" in unknown.json()["detail"]


async def test_the_upload_is_read_as_a_stream(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    body = ndjson(*[company(i) for i in range(10)])

    async def tiny_chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 7):  # lines and UTF-8 characters split across chunks
            yield body[start : start + 7]

    response = await api.post(
        f"/v1/datasets/{dataset_id}/records",
        content=tiny_chunks(),
        headers={**owner_headers, **NDJSON},
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 10


async def test_who_may_push_records(
    data_app: FastAPI, api: httpx.AsyncClient, issuer: Issuer
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    body = ndjson(company(0))

    async def status(headers: dict[str, str]) -> int:
        return (await push(api, dataset_id, body, {**headers, **NDJSON})).status_code

    assert await status({}) == 401
    assert await status(issuer.headers(roles=["citizen"], org=OWNER)) == 403
    assert await status(issuer.headers(roles=["dept_admin"], org=OTHER)) == 403
    assert await status(issuer.headers(roles=["officer"], org=OWNER)) == 200
    assert await status(issuer.headers(roles=["platform_admin"])) == 200
    system = issuer.headers(roles=["citizen"], org=OWNER, scope="exchange:records:write", acr="")
    assert await status(system) == 200
    history = await api.get(
        f"/v1/datasets/{dataset_id}/records/{CODES[0]}/history",
        headers=issuer.headers(roles=["officer"], org=OTHER),
    )
    assert history.status_code == 403


async def test_uploads_that_cannot_be_taken(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    hosted = await publish(data_app, ENTERPRISES)
    federated = await publish(
        data_app,
        definition(ENTERPRISES, hosting={"mode": "federated", "endpoint_url": "https://d.example"}),
    )
    body = ndjson(company(0))
    wrong_type = await push(api, hosted, body, {**owner_headers, "Content-Type": "text/plain"})
    latin = await push(
        api, hosted, body, {**owner_headers, "Content-Type": "text/csv; charset=gbk"}
    )
    to_federated = await push(api, federated, body, {**owner_headers, **NDJSON})
    unknown = await push(api, "0" * 32, body, {**owner_headers, **NDJSON})
    assert (wrong_type.status_code, latin.status_code) == (415, 415)
    assert to_federated.status_code == 409
    assert unknown.status_code == 404
    for response in (wrong_type, to_federated, unknown):
        assert response.headers["content-type"] == "application/problem+json"
    no_record = await api.get(
        f"/v1/datasets/{hosted}/records/{CODES[9]}/history", headers=owner_headers
    )
    bad_key = await api.get(
        f"/v1/datasets/{hosted}/records/nonsense/history", headers=owner_headers
    )
    assert (no_record.status_code, bad_key.status_code) == (404, 422)


async def test_an_import_publishes_counts_never_records(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    await push(api, dataset_id, ndjson(*[company(i) for i in range(5)], "[]"),
               {**owner_headers, **NDJSON})  # fmt: skip
    events = [d for t, d in await outbox_events(data_app)
              if t == "pingtai.exchange.records.imported"]  # fmt: skip
    assert len(events) == 1
    event = events[0]
    assert (event["dataset_id"], event["received"], event["inserted"], event["rejected"]) == (
        dataset_id, 6, 5, 1,
    )  # fmt: skip
    assert event["dataset_version"] == 1 and event["by_org_id"] == OWNER
    # What evaluation counts: the good rows, for the owner department.
    assert (event["accepted"], event["owner_org_id"]) == (5, OWNER)
    assert not any(code in json.dumps(event) for code in CODES)


async def test_reading_a_records_history_is_recorded_in_the_ledger(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    pushed = await push(api, dataset_id, ndjson(company(0)), {**owner_headers, **NDJSON})
    assert pushed.status_code == 200, pushed.text
    history = await api.get(
        f"/v1/datasets/{dataset_id}/records/{CODES[0]}/history",
        params={"purpose": "核对登记信息"},
        headers=owner_headers,
    )
    assert history.status_code == 200, history.text
    async with data_app.state.database.sessionmaker() as session:
        entries = (await session.execute(select(LedgerEntry))).scalars().all()
    refs = subject_refs_for(data_app.state.settings.secret_key)
    assert [(e.dataset_id, e.subject_ref, e.purpose, e.basis_kind, e.outcome) for e in entries] == [
        (dataset_id, refs.ref("credit_code", CODES[0]), "核对登记信息", "none", "granted")
    ]

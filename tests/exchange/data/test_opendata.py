"""Open data: open datasets for anyone, public fields only, each read on the ledger; closed
datasets never leak."""

from __future__ import annotations

import csv
import io
import json
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.exchange.ledger import LedgerEntry
from services.identity.identifiers import make_credit_code
from tests.exchange.conftest import connections_held_while_appending
from tests.exchange.data.conftest import (
    ENTERPRISES,
    PEOPLE,
    definition,
    deliver,
    publish,
    retired_event,
)

CODES = sorted(make_credit_code("9", "1", "330100", f"MA4{i:02d}L0E") for i in range(25))
NDJSON = {"Content-Type": "application/x-ndjson"}


async def _hosted_open(app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]) -> str:
    dataset_id = await publish(app, ENTERPRISES)
    body = "".join(
        json.dumps({"credit_code": c, "entity_name": f"企业{i}", "employees": i,
                    "registered_capital": i * 1.5}, ensure_ascii=False) + "\n"
        for i, c in enumerate(CODES)
    ).encode()  # fmt: skip
    response = await api.post(
        f"/v1/datasets/{dataset_id}/records", content=body, headers={**owner_headers, **NDJSON}
    )
    assert response.json()["inserted"] == len(CODES)
    return dataset_id


async def _ledger_entries(app: FastAPI, dataset_id: str) -> list[LedgerEntry]:
    async with app.state.database.sessionmaker() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.dataset_id == dataset_id)
        )
        return list(rows)


async def test_open_records_page_by_page_with_public_fields_only(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await _hosted_open(data_app, api, owner_headers)
    listed = (await api.get("/v1/open/datasets")).json()["items"]
    assert [d["id"] for d in listed] == [dataset_id]
    assert "employees" not in {f["name"] for f in listed[0]["fields"]}  # internal

    seen: list[dict[str, object]] = []
    url = f"/v1/open/datasets/{dataset_id}/records?limit=10"
    while url:
        page = await api.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor:
            assert not any(code in cursor for code in CODES)  # sealed
        url = f"/v1/open/datasets/{dataset_id}/records?limit=10&cursor={cursor}" if cursor else ""
    assert [r["credit_code"] for r in seen] == CODES
    assert all("employees" not in r for r in seen)
    assert set(seen[0]) == {"credit_code", "entity_name", "registered_capital",
                            "established_on", "listed"}  # fmt: skip
    entries = await _ledger_entries(data_app, dataset_id)
    assert len(entries) == 3  # one per request
    assert {(e.basis_kind, e.outcome, e.subject_ref) for e in entries} == {
        ("open_data", "granted", None)
    }


async def test_the_fields_filter_takes_only_public_fields(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await _hosted_open(data_app, api, owner_headers)
    chosen = await api.get(f"/v1/open/datasets/{dataset_id}/records?fields=entity_name&limit=2")
    assert chosen.json()["items"] == [{"entity_name": "企业0"}, {"entity_name": "企业1"}]
    for bad in ("employees", "nosuch", ","):
        refused = await api.get(f"/v1/open/datasets/{dataset_id}/records?fields={bad}")
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"] == "application/problem+json"
    foreign = await api.get(f"/v1/open/datasets/{uuid.uuid4().hex}/records?cursor=abc")
    assert foreign.status_code == 404
    junk = await api.get(f"/v1/open/datasets/{dataset_id}/records?cursor=junk")
    assert junk.status_code == 400


async def test_the_csv_streams_every_record(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await _hosted_open(data_app, api, owner_headers)
    response = await api.get(
        f"/v1/open/datasets/{dataset_id}/records.csv?fields=credit_code,registered_capital"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["credit_code", "registered_capital"]
    assert [r[0] for r in rows[1:]] == CODES
    assert rows[2][1] == "1.5"
    assert len(await _ledger_entries(data_app, dataset_id)) == 1


async def test_closed_datasets_never_leak(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    closed = await publish(data_app, PEOPLE)
    conditional = await publish(
        data_app, definition(ENTERPRISES, code="zj-conditional", open_type="conditional")
    )
    unknown = uuid.uuid4().hex
    listed = (await api.get("/v1/open/datasets")).json()["items"]
    assert {closed, conditional} & {d["id"] for d in listed} == set()
    answers = []
    for dataset_id in (closed, conditional, unknown):
        for suffix in ("", "/records", "/records.csv", "/records?fields=name"):
            response = await api.get(
                f"/v1/open/datasets/{dataset_id}{suffix}", headers=owner_headers
            )
            answers.append((response.status_code, response.json()["type"]))
    assert set(answers) == {(404, "https://pingtai.dev/problems/dataset-not-found")}
    for dataset_id in (closed, conditional):
        assert await _ledger_entries(data_app, dataset_id) == []


async def test_a_retired_or_federated_open_dataset_serves_no_records(
    data_app: FastAPI, api: httpx.AsyncClient
) -> None:
    federated = await publish(
        data_app,
        definition(ENTERPRISES, hosting={"mode": "federated", "endpoint_url": "https://d.example"}),
    )
    response = await api.get(f"/v1/open/datasets/{federated}/records.csv")
    assert response.status_code == 409
    assert (await api.get(f"/v1/open/datasets/{federated}")).status_code == 200
    hosted = await publish(data_app, ENTERPRISES)
    await deliver(data_app, retired_event(hosted, ENTERPRISES, last_version=1))
    assert (await api.get(f"/v1/open/datasets/{hosted}/records")).status_code == 404


async def test_open_data_reads_release_their_connections_before_the_ledger(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await _hosted_open(data_app, api, owner_headers)
    with connections_held_while_appending(data_app) as held:
        page = await api.get(f"/v1/open/datasets/{dataset_id}/records", params={"limit": 5})
        download = await api.get(f"/v1/open/datasets/{dataset_id}/records.csv")
    assert (page.status_code, download.status_code) == (200, 200)
    assert len(download.text.splitlines()) == len(CODES) + 1
    # Waiting for its ledger entry, a request holds no pooled connection (the CSV's rows
    # are read afterwards, a page at a time in short sessions).
    assert held == [0, 0]


async def test_csv_cells_a_spreadsheet_would_run_are_written_as_text(
    data_app: FastAPI, api: httpx.AsyncClient, owner_headers: dict[str, str]
) -> None:
    dataset_id = await publish(data_app, ENTERPRISES)
    names = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "普通企业"]
    body = "".join(
        json.dumps({"credit_code": c, "entity_name": n, "employees": 1}, ensure_ascii=False) + "\n"
        for c, n in zip(CODES, names, strict=False)
    ).encode()
    pushed = await api.post(
        f"/v1/datasets/{dataset_id}/records", content=body, headers={**owner_headers, **NDJSON}
    )
    assert pushed.json()["inserted"] == len(names), pushed.text
    response = await api.get(f"/v1/open/datasets/{dataset_id}/records.csv?fields=entity_name")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert sorted(r[0] for r in rows[1:]) == sorted(
        ['\'=HYPERLINK("http://x")', "'+1", "'-2+3", "'@SUM(A1)", "普通企业"]
    )
    # The JSON pages give the values as they are.
    page = await api.get(f"/v1/open/datasets/{dataset_id}/records?fields=entity_name")
    assert sorted(i["entity_name"] for i in page.json()["items"]) == sorted(names)

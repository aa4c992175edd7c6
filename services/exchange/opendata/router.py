"""The open-data API (公共数据开放): no token needed; closed datasets answer as unknown ones."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from libs.common.auth import OptionalPrincipal
from libs.common.database import Database, SessionDep
from libs.common.errors import PROBLEM_CONTENT_TYPE, Problem
from libs.common.pagination import TEXT_CURSOR, Page, PageDep, encode_cursor
from services.exchange.datasets import repository as datasets_repository
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.datasets.router import DatasetId
from services.exchange.datasets.schemas import DatasetFieldView
from services.exchange.ledger import LedgerDep
from services.exchange.opendata import cursors
from services.exchange.opendata import service as opendata_service
from services.exchange.opendata.schemas import OpenDataset, OpenRecordPage

router = APIRouter(prefix="/open", tags=["open data"])

CSV_PAGE_ROWS = 1000
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "No open dataset with this id (closed ones answer the same)",
    },
    409: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "A federated dataset: its department serves its records",
    },
}
Fields = Annotated[
    str | None,
    Query(
        max_length=2000,
        pattern=r"^[a-z0-9_, ]*$",
        description="Comma-separated public fields; all public fields when omitted.",
    ),
]


def _view(dataset: ExchangeDataset, request: Request) -> OpenDataset:
    public = set(opendata_service.public_fields(dataset))
    base = str(request.url_for("read_open_records", dataset_id=dataset.id))
    return OpenDataset(
        id=dataset.id,
        code=dataset.code,
        version=dataset.version,
        owner_org_id=dataset.owner_org_id,
        name=dataset.name,
        name_en=dataset.name_en,
        description=dataset.description,
        region_code=dataset.region_code,
        update_frequency=dataset.update_frequency,
        fields=[
            DatasetFieldView.model_validate(f)
            for f in dataset.field_definitions
            if f["name"] in public
        ],
        records_url=base,
        csv_url=f"{base}.csv",
        published_at=dataset.published_at,
    )


def _secret(request: Request) -> str:
    return str(request.app.state.settings.secret_key)


@router.get("/datasets", summary="Open datasets (no token needed)")
async def list_open_datasets(
    request: Request, session: SessionDep, page: PageDep
) -> Page[OpenDataset]:
    after = page.position(TEXT_CURSOR)
    found = await datasets_repository.search(
        session, open_only=True, owner_org_id=None, status=None, after=after, limit=page.limit
    )
    next_cursor = encode_cursor(found[-1].code) if len(found) == page.limit else None
    return Page[OpenDataset](items=[_view(d, request) for d in found], next_cursor=next_cursor)


@router.get("/datasets/{dataset_id}", summary="An open dataset", responses=_NOT_FOUND)
async def read_open_dataset(
    dataset_id: DatasetId, request: Request, session: SessionDep
) -> OpenDataset:
    dataset = await opendata_service.open_dataset(session, dataset_id)
    return _view(dataset, request)


@router.get(
    "/datasets/{dataset_id}/records",
    summary="An open dataset's records, a page at a time (public fields only)",
    responses=_NOT_FOUND,
)
async def read_open_records(
    dataset_id: DatasetId,
    request: Request,
    principal: OptionalPrincipal,
    session: SessionDep,
    ledger: LedgerDep,
    page: Annotated[int, Query(alias="limit", ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    fields: Fields = None,
) -> OpenRecordPage:
    dataset = await opendata_service.open_dataset(session, dataset_id)
    chosen = opendata_service.chosen_fields(dataset, fields)
    secret = _secret(request)
    after = cursors.open_cursor(secret, cursor, dataset_id=dataset.id) if cursor else None
    rows = await opendata_service.records_page(
        session=session, dataset=dataset, fields=chosen, after=after, limit=page
    )
    await opendata_service.record_read(
        ledger, session=session, principal=principal, dataset=dataset, fields=chosen
    )
    next_cursor = (
        cursors.seal(secret, dataset_id=dataset.id, subject_key=rows[-1][0])
        if len(rows) == page
        else None
    )
    return OpenRecordPage(fields=chosen, items=[r for _, r in rows], next_cursor=next_cursor)


@router.get(
    "/datasets/{dataset_id}/records.csv",
    summary="An open dataset's records as CSV, streamed (public fields only)",
    response_class=StreamingResponse,
    responses={**_NOT_FOUND, 200: {"content": {"text/csv": {}}, "description": "The records"}},
)
async def download_open_records(
    dataset_id: DatasetId,
    request: Request,
    principal: OptionalPrincipal,
    session: SessionDep,
    ledger: LedgerDep,
    fields: Fields = None,
) -> StreamingResponse:
    dataset = await opendata_service.open_dataset(session, dataset_id)
    chosen = opendata_service.chosen_fields(dataset, fields)
    # Checked before the stream starts: a federated dataset is a problem, not a broken CSV.
    opendata_service.ensure_hosted(dataset)
    await opendata_service.record_read(
        ledger, session=session, principal=principal, dataset=dataset, fields=chosen
    )
    database: Database = request.app.state.database
    return StreamingResponse(
        _csv_rows(database, dataset, chosen),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{dataset.code}.csv"'},
    )


async def _csv_rows(
    database: Database, dataset: ExchangeDataset, fields: Sequence[str]
) -> AsyncIterator[str]:
    """The CSV a page of rows at a time, each page read in a short session of its own."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    after: str | None = None
    while True:
        async with database.sessionmaker() as session:
            rows = await opendata_service.records_page(
                session=session, dataset=dataset, fields=fields, after=after, limit=CSV_PAGE_ROWS
            )
        for _, record in rows:
            writer.writerow([_cell(record[f]) for f in fields])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < CSV_PAGE_ROWS:
            return
        after = rows[-1][0]


# A text cell a spreadsheet would run as a formula (OWASP "CSV injection"): prefixed with an
# apostrophe, which spreadsheets show as text and drop. Numbers are written as they are.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value

"""The hosted records API: departments push their records; the owner reads a record's history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.context import current_request_id
from libs.common.database import SessionDep
from libs.common.errors import PROBLEM_CONTENT_TYPE, Problem
from libs.common.pagination import INT_CURSOR, Page, PageDep, encode_cursor
from libs.common.subjects import SubjectRefsDep
from services.exchange.datasets.router import DatasetId
from services.exchange.ledger import AccessRecord, LedgerDep
from services.exchange.records import service as records_service
from services.exchange.records.exceptions import UnsupportedUploadType
from services.exchange.records.schemas import ImportSummary, RecordVersion, UploadFormat
from services.exchange.settings import ExchangeSettings

HISTORY_PURPOSE = "record maintenance by the owning department (数据维护)"

router = APIRouter(tags=["records"])

_MEDIA_TYPES: dict[str, UploadFormat] = {
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/jsonlines": "ndjson",
    "text/csv": "csv",
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "example": '{"credit_code": "91330100MA27XL0E2A", "entity_name": "示例科技"}\n',
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": "credit_code,entity_name\n91330100MA27XL0E2A,杭州示例科技有限公司\n",
            },
        },
    }
}
_UPLOAD_RESPONSES: dict[int | str, dict[str, object]] = {
    **AUTH_RESPONSES,
    404: {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}}, "description": "No dataset"},
    409: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "The dataset is federated or retired",
    },
    413: {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}}, "description": "Too large"},
    415: {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}}, "description": "Not a format"},
}


def _upload_format(content_type: str | None) -> UploadFormat:
    media_type, _, parameters = (content_type or "").partition(";")
    found = _MEDIA_TYPES.get(media_type.strip().lower())
    charset = next(
        (p.split("=", 1)[1].strip().strip('"').lower() for p in parameters.split(";")
         if p.strip().lower().startswith("charset=")),
        "utf-8",
    )  # fmt: skip
    if found is None or charset not in {"utf-8", "utf8"}:
        raise UnsupportedUploadType(
            "Send the records as application/x-ndjson or text/csv, in UTF-8."
        )
    return found


@router.post(
    "/datasets/{dataset_id}/records",
    summary="Push records to a hosted dataset (NDJSON or CSV, streamed): upsert by subject key",
    description=(
        "For the owner department (its admins and officers, or its system with the scope "
        "`exchange:records:write`) and platform admins. Each row is checked against the "
        "catalogue's fields; good rows are kept, bad rows are listed with their line. A changed "
        "record gets a new version; an identical one does not."
    ),
    openapi_extra=_UPLOAD_BODY,
    responses=_UPLOAD_RESPONSES,
)
async def push_records(
    dataset_id: DatasetId,
    request: Request,
    principal: CurrentPrincipal,
    content_type: Annotated[str | None, Header()] = None,
) -> ImportSummary:
    upload_format = _upload_format(content_type)
    settings: ExchangeSettings = request.app.state.settings

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    return await records_service.import_records(
        sessionmaker=request.app.state.database.sessionmaker,
        principal=principal,
        dataset_id=dataset_id,
        upload_format=upload_format,
        chunks=chunks(),
        batch_rows=settings.import_batch_rows,
        max_reported_errors=settings.import_max_reported_errors,
    )


@router.get(
    "/datasets/{dataset_id}/records/{subject_key}/history",
    summary="Every version of a subject's record, newest first (the owner department)",
    responses=AUTH_RESPONSES,
)
async def record_history(
    dataset_id: DatasetId,
    subject_key: Annotated[str, Path(min_length=1, max_length=64)],
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    ledger: LedgerDep,
    subject_refs: SubjectRefsDep,
    purpose: Annotated[
        str, Query(min_length=1, max_length=200, description="Why the history is read.")
    ] = HISTORY_PURPOSE,
) -> Page[RecordVersion]:
    before = page.position(INT_CURSOR)
    dataset, key, versions = await records_service.history(
        session=session,
        principal=principal,
        dataset_id=dataset_id,
        raw_subject_key=subject_key,
        before=before,
        limit=page.limit,
    )
    items = [records_service.version_view(v) for v in versions]
    # The read is someone's data like any other: it goes into the ledger (and so into "who used
    # my data") before the answer, with the session closed first (the ledger's group commit
    # must not wait behind a connection this request holds).
    await session.close()
    await ledger.append(
        AccessRecord(
            actor=principal.sub,
            client_id=principal.client_id,
            actor_org_id=principal.org,
            dataset_id=dataset.id,
            owner_org_id=dataset.owner_org_id,
            subject_ref=subject_refs.ref(dataset.subject_key_kind, key),
            fields=tuple(f.name for f in dataset.fields),
            purpose=purpose,
            basis_kind="none",
            basis_ref=None,
            outcome="granted",
            request_id=current_request_id(),
        )
    )
    next_cursor = encode_cursor(versions[-1].version) if len(versions) == page.limit else None
    return Page[RecordVersion](items=items, next_cursor=next_cursor)

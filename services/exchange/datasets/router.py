"""The exchange's dataset API: its copy of the catalogue (政务信息资源目录)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from libs.common.auth import AUTH_RESPONSES, OptionalPrincipal, Principal
from libs.common.database import SessionDep
from libs.common.pagination import TEXT_CURSOR, Page, PageDep, encode_cursor
from services.exchange.datasets import service as datasets_service
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.datasets.schemas import ID_PATTERN, ExchangeDatasetView

router = APIRouter(tags=["datasets"])

DatasetId = Annotated[str, Path(pattern=ID_PATTERN, description="The catalogue's dataset id.")]


def to_view(dataset: ExchangeDataset, *, principal: Principal | None) -> ExchangeDatasetView:
    """The API's view of the copy; the endpoint address only to those who run it."""
    body: dict[str, Any] = {
        "id": dataset.id,
        "code": dataset.code,
        "version": dataset.version,
        "owner_org_id": dataset.owner_org_id,
        "name": dataset.name,
        "name_en": dataset.name_en,
        "description": dataset.description,
        "region_code": dataset.region_code,
        "fields": dataset.field_definitions,
        "subject_key": {"kind": dataset.subject_key_kind, "field": dataset.subject_key_field},
        "share_type": dataset.share_type,
        "open_type": dataset.open_type,
        "not_open_reason": dataset.not_open_reason,
        "update_frequency": dataset.update_frequency,
        "mode": dataset.mode,
        "endpoint_url": dataset.endpoint_url
        if datasets_service.may_see_endpoint(principal, dataset)
        else None,
        "status": dataset.status,
        "published_at": dataset.published_at,
        "retired_at": dataset.retired_at,
    }
    return ExchangeDatasetView.model_validate(body)


@router.get(
    "/datasets",
    summary="Datasets the exchange knows (signed-in callers); without a token only open ones",
    responses=AUTH_RESPONSES,
)
async def list_datasets(
    principal: OptionalPrincipal,
    session: SessionDep,
    page: PageDep,
    owner_org_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    dataset_status: Annotated[Literal["published", "retired"] | None, Query(alias="status")] = None,
) -> Page[ExchangeDatasetView]:
    after = page.position(TEXT_CURSOR)
    found = await datasets_service.search(
        session=session,
        principal=principal,
        open_only=False,
        owner_org_id=owner_org_id,
        status=dataset_status,
        after=after,
        limit=page.limit,
    )
    next_cursor = encode_cursor(found[-1].code) if len(found) == page.limit else None
    return Page[ExchangeDatasetView](
        items=[to_view(d, principal=principal) for d in found], next_cursor=next_cursor
    )


@router.get(
    "/datasets/{dataset_id}",
    summary="A dataset as the exchange knows it; without a token only an open one",
    responses=AUTH_RESPONSES,
)
async def get_dataset(
    dataset_id: DatasetId, principal: OptionalPrincipal, session: SessionDep
) -> ExchangeDatasetView:
    dataset = await datasets_service.visible(
        session=session, principal=principal, dataset_id=dataset_id
    )
    return to_view(dataset, principal=principal)

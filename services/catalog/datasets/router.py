"""The data-resource catalogue API (政务信息资源目录): datasets and their versions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal, OptionalPrincipal
from libs.common.database import SessionDep
from libs.common.pagination import INT_CURSOR, TEXT_CURSOR, Page, PageDep, encode_cursor
from services.catalog.datasets import service as datasets_service
from services.catalog.datasets.repository import DatasetFilters
from services.catalog.datasets.schemas import (
    CODE_PATTERN,
    ID_PATTERN,
    Dataset,
    DatasetCreate,
    DatasetStatus,
    DatasetUpdate,
    DatasetVersion,
    OpenType,
    ShareType,
    SubjectKind,
)

router = APIRouter(tags=["datasets"])

DatasetId = Annotated[str, Path(pattern=ID_PATTERN)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]


def _allow_local_http(request: Request) -> bool:
    # A federated endpoint may be plain http://127.0.0.1 while developing and testing.
    return bool(request.app.state.settings.env != "production")


AllowLocalHttp = Annotated[bool, Depends(_allow_local_http)]


@router.post(
    "/datasets",
    status_code=status.HTTP_201_CREATED,
    summary="Describe a dataset, as a draft (its department's admins, platform admins)",
    responses=AUTH_RESPONSES,
)
async def create_dataset(
    draft: DatasetCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    allow_local_http: AllowLocalHttp,
) -> Dataset:
    dataset = await datasets_service.create(
        session=session, principal=principal, draft=draft, allow_local_http=allow_local_http
    )
    return datasets_service.to_view(dataset, version=None, principal=principal)


@router.get(
    "/datasets",
    summary="Published datasets (public); drafts with status=draft for their department",
    responses=AUTH_RESPONSES,
)
async def list_datasets(
    principal: OptionalPrincipal,
    session: SessionDep,
    page: PageDep,
    code: Annotated[str | None, Query(pattern=CODE_PATTERN, description="Exact code.")] = None,
    owner_org_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    share_type: ShareType | None = None,
    open_type: OpenType | None = None,
    subject_kind: SubjectKind | None = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, pattern=r"^[^\x00]+$", description="Part of the name."),
    ] = None,
    dataset_status: Annotated[
        DatasetStatus, Query(alias="status", description="draft: insiders only.")
    ] = "published",
) -> Page[Dataset]:
    filters = DatasetFilters(
        status=dataset_status,
        code=code,
        owner_org_id=owner_org_id,
        share_type=share_type,
        open_type=open_type,
        subject_kind=subject_kind,
        name_contains=q,
    )
    after = page.position(TEXT_CURSOR)
    items = await datasets_service.search(
        session=session, principal=principal, filters=filters, after=after, limit=page.limit
    )
    next_cursor = encode_cursor(items[-1].code) if len(items) == page.limit else None
    return Page[Dataset](items=items, next_cursor=next_cursor)


@router.get(
    "/datasets/{dataset_id}",
    summary="A dataset: its latest version, or its draft for those who may see it",
    responses=AUTH_RESPONSES,
)
async def get_dataset(
    dataset_id: DatasetId,
    principal: OptionalPrincipal,
    session: SessionDep,
    view: Annotated[
        Literal["published", "draft"] | None,
        Query(description="Which copy; insiders get the draft by default."),
    ] = None,
) -> Dataset:
    return await datasets_service.read(
        session=session, principal=principal, dataset_id=dataset_id, view=view
    )


@router.patch(
    "/datasets/{dataset_id}",
    summary="Edit a dataset's draft; published versions never change",
    responses=AUTH_RESPONSES,
)
async def update_dataset(
    dataset_id: DatasetId,
    update: DatasetUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    allow_local_http: AllowLocalHttp,
) -> Dataset:
    dataset = await datasets_service.update(
        session=session,
        principal=principal,
        dataset_id=dataset_id,
        update=update,
        allow_local_http=allow_local_http,
    )
    return datasets_service.to_view(dataset, version=None, principal=principal)


@router.post(
    "/datasets/{dataset_id}/publish",
    summary="Publish the draft as the next immutable version",
    responses=AUTH_RESPONSES,
)
async def publish_dataset(
    dataset_id: DatasetId, principal: CurrentPrincipal, session: SessionDep
) -> Dataset:
    dataset, version = await datasets_service.publish(
        session=session, principal=principal, dataset_id=dataset_id
    )
    return datasets_service.to_view(dataset, version=version, principal=principal)


@router.post(
    "/datasets/{dataset_id}/retire",
    summary="Retire a published dataset; its versions stay readable",
    responses=AUTH_RESPONSES,
)
async def retire_dataset(
    dataset_id: DatasetId, principal: CurrentPrincipal, session: SessionDep
) -> Dataset:
    dataset = await datasets_service.retire(
        session=session, principal=principal, dataset_id=dataset_id
    )
    return await datasets_service.read(
        session=session, principal=principal, dataset_id=dataset.id, view="published"
    )


@router.get(
    "/datasets/{dataset_id}/versions",
    summary="A dataset's published versions, oldest first",
    responses=AUTH_RESPONSES,
)
async def list_dataset_versions(
    dataset_id: DatasetId, principal: OptionalPrincipal, session: SessionDep, page: PageDep
) -> Page[DatasetVersion]:
    after = page.position(INT_CURSOR)
    found = await datasets_service.versions(
        session=session, principal=principal, dataset_id=dataset_id, after=after,
        limit=page.limit,
    )  # fmt: skip
    next_cursor = encode_cursor(found[-1].version) if len(found) == page.limit else None
    return Page[DatasetVersion](
        items=[datasets_service.version_view(v) for v in found], next_cursor=next_cursor
    )


@router.get(
    "/datasets/{dataset_id}/versions/{number}",
    summary="One published version of a dataset, as it was published",
    responses=AUTH_RESPONSES,
)
async def get_dataset_version(
    dataset_id: DatasetId, number: VersionNumber, principal: OptionalPrincipal, session: SessionDep
) -> DatasetVersion:
    found = await datasets_service.version(
        session=session, principal=principal, dataset_id=dataset_id, number=number
    )
    return datasets_service.version_view(found)

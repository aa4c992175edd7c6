"""The service-items API: drafts, publishing, versions and the public search."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal, OptionalPrincipal
from libs.common.database import Database, SessionDep
from libs.common.pagination import INT_CURSOR, TEXT_CURSOR, Page, PageDep, encode_cursor
from services.catalog import base as catalog_base
from services.catalog.bundles import service as bundles_service
from services.catalog.items import service as items_service
from services.catalog.items.schemas import (
    Item,
    ItemCreate,
    ItemKind,
    ItemSummary,
    ItemUpdate,
    ItemVersion,
    SortOrder,
)

router = APIRouter(tags=["service items"], responses=AUTH_RESPONSES)

ItemId = Annotated[str, Path(max_length=32)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]


@router.post(
    "/items", status_code=status.HTTP_201_CREATED,
    summary="Describe a service item, as a draft (its department's admins, platform admins)",
)  # fmt: skip
async def create_item(draft: ItemCreate, principal: CurrentPrincipal, session: SessionDep) -> Item:
    item = await items_service.create(session=session, principal=principal, draft=draft)
    return await items_service.view(session=session, principal=principal, item=item)


@router.get(
    "/items",
    summary="Search published service items (public): keyword, filters, sort, pages",
    description=(
        "The keyword matches a Chinese (or English) substring of the name or description. "
        "A region filter matches the region and everything below it: 330000 matches 33xxxx, "
        "330100 matches 3301xx, a county code matches itself. Relevance puts name matches "
        "first. `bundle_id` keeps the items of a published bundle."
    ),
)
async def search_items(
    session: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100, description="Keyword.")] = None,
    code: Annotated[str | None, Query(max_length=64)] = None,
    owner_org_id: Annotated[str | None, Query(max_length=32)] = None,
    region_code: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    applicant_type: Literal["individual", "enterprise"] | None = None,
    max_visits: Annotated[int | None, Query(ge=0, le=1)] = None,
    online_only: bool = False,
    kind: ItemKind | None = None,
    bundle_id: Annotated[str | None, Query(max_length=32)] = None,
    sort: SortOrder = "relevance",
) -> Page[ItemSummary]:
    item_ids = None
    if bundle_id is not None:
        item_ids = await bundles_service.listed_item_ids(session=session, bundle_id=bundle_id)
    filters = items_service.search_filters(
        keyword=q, code=code, owner_org_id=owner_org_id, region_code=region_code,
        applicant_type=applicant_type, max_visits=max_visits, online_only=online_only,
        kind=kind, item_ids=item_ids,
    )  # fmt: skip
    found, position = await items_service.search(
        session=session, filters=filters, sort=sort, page=page
    )
    return Page[ItemSummary](
        items=[items_service.summary(v) for v in found],
        next_cursor=encode_cursor(position) if position is not None else None,
    )


@router.get(
    "/item-drafts",
    summary="Items with unpublished changes: your department's, or any (platform admins)",
)
async def list_item_drafts(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    owner_org_id: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[Item]:
    found = await items_service.drafts(
        session=session, principal=principal, owner_org_id=owner_org_id,
        after=page.position(TEXT_CURSOR), limit=page.limit,
    )  # fmt: skip
    return await catalog_base.drafts_page(
        Page[Item], found, limit=page.limit, code=lambda item: item.code,
        view=lambda item: items_service.view(session=session, principal=principal, item=item),
    )  # fmt: skip


@router.get(
    "/items/{item_id}",
    response_model=Item,
    summary="One service item: the published version (public), or the draft for its department",
)
async def get_item(
    item_id: ItemId, principal: OptionalPrincipal, request: Request
) -> Item | Response:
    # No SessionDep: the public read (the catalog's hottest request) is one direct query; only
    # a draft's readers and unpublished items need the ORM, in a read-only unit of work.
    database: Database = request.app.state.database
    body = await items_service.read_published(
        engine=database.engine, principal=principal, item_id=item_id
    )
    if body is not None:
        # The public body stored at publish, served without validating or serialising again.
        return Response(content=body.encode(), media_type="application/json")
    async with database.sessionmaker() as session:
        return await items_service.read(session=session, principal=principal, item_id=item_id)


@router.patch("/items/{item_id}", summary="Edit an item's draft; its published version stays")
async def update_item(
    item_id: ItemId, update: ItemUpdate, principal: CurrentPrincipal, session: SessionDep
) -> Item:
    item = await items_service.update(
        session=session, principal=principal, item_id=item_id, update=update
    )
    return await items_service.view(session=session, principal=principal, item=item)


@router.post(
    "/items/{item_id}/publish", status_code=status.HTTP_201_CREATED,
    summary="Publish the draft as a new immutable version",
)  # fmt: skip
async def publish_item(
    item_id: ItemId, principal: CurrentPrincipal, session: SessionDep
) -> ItemVersion:
    version = await items_service.publish(session=session, principal=principal, item_id=item_id)
    return items_service.version_view(version)


@router.post("/items/{item_id}/retire", summary="Stop offering an item; its versions stay")
async def retire_item(item_id: ItemId, principal: CurrentPrincipal, session: SessionDep) -> Item:
    item = await items_service.retire(session=session, principal=principal, item_id=item_id)
    return await items_service.view(session=session, principal=principal, item=item)


@router.get("/items/{item_id}/versions", summary="An item's published versions (public)")
async def list_item_versions(
    item_id: ItemId, session: SessionDep, page: PageDep
) -> Page[ItemVersion]:
    found = await items_service.list_versions(
        session=session, item_id=item_id, after=page.position(INT_CURSOR), limit=page.limit
    )
    next_cursor = encode_cursor(found[-1].version) if len(found) == page.limit else None
    return Page[ItemVersion](
        items=[items_service.version_view(v) for v in found], next_cursor=next_cursor
    )


@router.get(
    "/items/{item_id}/versions/{version}",
    summary="One immutable version of an item (public); applications reference it",
)
async def get_item_version(
    item_id: ItemId, version: VersionNumber, principal: OptionalPrincipal, session: SessionDep
) -> ItemVersion:
    found = await items_service.get_version(
        session=session, principal=principal, item_id=item_id, version=version
    )
    return items_service.version_view(found)

"""The bundles API (一件事): drafts, the merged form, publishing, versions and search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal, OptionalPrincipal
from libs.common.database import SessionDep
from libs.common.pagination import INT_CURSOR, TEXT_CURSOR, Page, PageDep, encode_cursor
from services.catalog import base as catalog_base
from services.catalog.bundles import service as bundles_service
from services.catalog.bundles.schemas import (
    Bundle,
    BundleCreate,
    BundleSummary,
    BundleUpdate,
    BundleVersion,
)

router = APIRouter(tags=["bundles"], responses=AUTH_RESPONSES)

BundleId = Annotated[str, Path(max_length=32)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]


@router.post(
    "/bundles", status_code=status.HTTP_201_CREATED,
    summary="Describe a one-thing bundle of published items; the catalog merges their forms",
)  # fmt: skip
async def create_bundle(
    draft: BundleCreate, principal: CurrentPrincipal, session: SessionDep
) -> Bundle:
    bundle = await bundles_service.create(session=session, principal=principal, draft=draft)
    return await bundles_service.view(session=session, principal=principal, bundle=bundle)


@router.get("/bundles", summary="Search published bundles (public), in code order")
async def search_bundles(
    session: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=100, description="Keyword.")] = None,
    code: Annotated[str | None, Query(max_length=64)] = None,
    owner_org_id: Annotated[str | None, Query(max_length=32)] = None,
    item_id: Annotated[str | None, Query(max_length=32, description="Bundles holding it.")] = None,
) -> Page[BundleSummary]:
    found = await bundles_service.search(
        session=session, keyword=q, code=code, owner_org_id=owner_org_id, item_id=item_id,
        after=page.position(TEXT_CURSOR), limit=page.limit,
    )  # fmt: skip
    next_cursor = encode_cursor(found[-1].code) if len(found) == page.limit else None
    return Page[BundleSummary](
        items=[bundles_service.summary(v) for v in found], next_cursor=next_cursor
    )


@router.get(
    "/bundle-drafts",
    summary="Bundles with unpublished changes: your department's, or any (platform admins)",
)
async def list_bundle_drafts(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    owner_org_id: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[Bundle]:
    found = await bundles_service.drafts(
        session=session, principal=principal, owner_org_id=owner_org_id,
        after=page.position(TEXT_CURSOR), limit=page.limit,
    )  # fmt: skip
    return await catalog_base.drafts_page(
        Page[Bundle], found, limit=page.limit, code=lambda bundle: bundle.code,
        view=lambda bundle: bundles_service.view(
            session=session, principal=principal, bundle=bundle
        ),
    )  # fmt: skip


@router.get("/bundles/{bundle_id}", summary="One bundle with its merged form and materials")
async def get_bundle(
    bundle_id: BundleId, principal: OptionalPrincipal, session: SessionDep
) -> Bundle:
    bundle = await bundles_service.get(session=session, bundle_id=bundle_id)
    return await bundles_service.view(session=session, principal=principal, bundle=bundle)


@router.patch("/bundles/{bundle_id}", summary="Edit a bundle's draft; its published version stays")
async def update_bundle(
    bundle_id: BundleId, update: BundleUpdate, principal: CurrentPrincipal, session: SessionDep
) -> Bundle:
    bundle = await bundles_service.update(
        session=session, principal=principal, bundle_id=bundle_id, update=update
    )
    return await bundles_service.view(session=session, principal=principal, bundle=bundle)


@router.post(
    "/bundles/{bundle_id}/publish", status_code=status.HTTP_201_CREATED,
    summary="Publish: merge the items' current versions and freeze the result",
)  # fmt: skip
async def publish_bundle(
    bundle_id: BundleId, principal: CurrentPrincipal, session: SessionDep
) -> BundleVersion:
    version = await bundles_service.publish(
        session=session, principal=principal, bundle_id=bundle_id
    )
    return bundles_service.version_view(version)


@router.post("/bundles/{bundle_id}/retire", summary="Stop offering a bundle; its versions stay")
async def retire_bundle(
    bundle_id: BundleId, principal: CurrentPrincipal, session: SessionDep
) -> Bundle:
    bundle = await bundles_service.retire(session=session, principal=principal, bundle_id=bundle_id)
    return await bundles_service.view(session=session, principal=principal, bundle=bundle)


@router.get("/bundles/{bundle_id}/versions", summary="A bundle's published versions (public)")
async def list_bundle_versions(
    bundle_id: BundleId, session: SessionDep, page: PageDep
) -> Page[BundleVersion]:
    after = page.position(INT_CURSOR)
    found = await bundles_service.list_versions(
        session=session, bundle_id=bundle_id, after=after, limit=page.limit
    )
    next_cursor = encode_cursor(found[-1].version) if len(found) == page.limit else None
    return Page[BundleVersion](
        items=[bundles_service.version_view(v) for v in found], next_cursor=next_cursor
    )


@router.get("/bundles/{bundle_id}/versions/{version}", summary="One immutable bundle version")
async def get_bundle_version(
    bundle_id: BundleId, version: VersionNumber, session: SessionDep
) -> BundleVersion:
    found = await bundles_service.get_version(session=session, bundle_id=bundle_id, version=version)
    return bundles_service.version_view(found)

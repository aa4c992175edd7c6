"""The organisations API: organisations, memberships and the region tree."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from libs.common.pagination import TEXT_CURSOR, Page, PageDep, encode_cursor
from libs.common.subjects import SubjectRefsDep
from services.identity.dependencies import ProtectorDep
from services.identity.organisations import service as organisations_service
from services.identity.organisations.schemas import (
    Membership,
    MembershipCreate,
    Organisation,
    OrganisationCreate,
    OrganisationUpdate,
    Region,
    RegionTree,
)

router = APIRouter()

OrgId = Annotated[str, Path(max_length=32)]
RegionCode = Annotated[str, Path(pattern=r"^\d{6}$")]


@router.post(
    "/organisations",
    status_code=status.HTTP_201_CREATED,
    tags=["organisations"],
    summary="Register a department or an enterprise (platform admins)",
    responses=AUTH_RESPONSES,
)
async def register_organisation(
    draft: OrganisationCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
    subject_refs: SubjectRefsDep,
) -> Organisation:
    org = await organisations_service.register(
        session=session,
        protector=protector,
        subject_refs=subject_refs,
        principal=principal,
        draft=draft,
    )
    return organisations_service.to_view(org, protector=protector, principal=principal)


@router.get(
    "/organisations",
    tags=["organisations"],
    summary="Departments and enterprises, by kind, region (and below) and name",
    responses=AUTH_RESPONSES,
)
async def list_organisations(
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
    page: PageDep,
    kind: Literal["department", "enterprise"] | None = None,
    region_code: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    name: Annotated[str | None, Query(max_length=100, description="Part of the name.")] = None,
) -> Page[Organisation]:
    orgs = await organisations_service.search(
        session=session,
        kind=kind,
        region_code=region_code,
        name_contains=name,
        after=page.position(TEXT_CURSOR),
        limit=page.limit,
    )
    items = [
        organisations_service.to_view(o, protector=protector, principal=principal) for o in orgs
    ]
    next_cursor = encode_cursor(orgs[-1].id) if len(orgs) == page.limit else None
    return Page[Organisation](items=items, next_cursor=next_cursor)


@router.get(
    "/organisations/{org_id}", tags=["organisations"], summary="One organisation",
    responses=AUTH_RESPONSES,
)  # fmt: skip
async def get_organisation(
    org_id: OrgId, principal: CurrentPrincipal, session: SessionDep, protector: ProtectorDep
) -> Organisation:
    org = await organisations_service.get(session=session, org_id=org_id)
    return organisations_service.to_view(org, protector=protector, principal=principal)


@router.patch(
    "/organisations/{org_id}",
    tags=["organisations"],
    summary="Rename (its admins) or suspend (platform admins) an organisation",
    responses=AUTH_RESPONSES,
)
async def update_organisation(
    org_id: OrgId,
    update: OrganisationUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
    subject_refs: SubjectRefsDep,
) -> Organisation:
    org = await organisations_service.update(
        session=session,
        protector=protector,
        subject_refs=subject_refs,
        principal=principal,
        org_id=org_id,
        update=update,
    )
    return organisations_service.to_view(org, protector=protector, principal=principal)


def _membership(m: object) -> Membership:
    return Membership.model_validate(m, from_attributes=True)


@router.get(
    "/organisations/{org_id}/memberships",
    tags=["memberships"],
    summary="Who holds which role in an organisation",
    responses=AUTH_RESPONSES,
)
async def list_memberships(
    org_id: OrgId, principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[Membership]:
    memberships = await organisations_service.memberships_of_org(
        session=session, principal=principal, org_id=org_id, after=page.position(TEXT_CURSOR),
        limit=page.limit,
    )  # fmt: skip
    next_cursor = encode_cursor(memberships[-1].id) if len(memberships) == page.limit else None
    return Page[Membership](items=[_membership(m) for m in memberships], next_cursor=next_cursor)


@router.post(
    "/memberships",
    status_code=status.HTTP_201_CREATED,
    tags=["memberships"],
    summary="Give a person a role (platform admins; department admins in their department)",
    responses=AUTH_RESPONSES,
)
async def grant_role(
    draft: MembershipCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
) -> Membership:
    membership = await organisations_service.grant(
        session=session, protector=protector, principal=principal, draft=draft
    )
    return _membership(membership)


@router.delete(
    "/memberships/{membership_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["memberships"],
    summary="Take a role away",
    responses=AUTH_RESPONSES,
)
async def revoke_role(
    membership_id: Annotated[str, Path(max_length=32)],
    principal: CurrentPrincipal,
    session: SessionDep,
) -> Response:
    await organisations_service.revoke(
        session=session, principal=principal, membership_id=membership_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/regions/{code}",
    tags=["regions"],
    summary="An administrative division (GB/T 2260), public",
)
async def get_region(code: RegionCode) -> Region:
    return organisations_service.region_view(code)


@router.get(
    "/regions/{code}/tree",
    tags=["regions"],
    summary="A division and everything under it (province → city → county), public",
)
async def get_region_tree(code: RegionCode) -> RegionTree:
    return organisations_service.region_tree(code)

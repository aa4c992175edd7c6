"""Plans API: anyone reads the published plans, platform admins manage them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from gateway.plans import service as plans_service
from gateway.plans.schemas import ID_PATTERN, Plan, PlanCreate, PlanUpdate
from libs.common.auth import AUTH_RESPONSES, OptionalPrincipal, Principal, Role, require_roles
from libs.common.database import SessionDep
from libs.common.errors import PROBLEM_CONTENT_TYPE, Problem
from libs.common.pagination import TEXT_CURSOR, Page, PageDep, encode_cursor

router = APIRouter(tags=["plans"])

PlanId = Annotated[str, Path(pattern=ID_PATTERN)]
PlatformAdmin = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN))]


@router.get("/plans", summary="Plans (public: the published ones)", responses=AUTH_RESPONSES)
async def list_plans(
    principal: OptionalPrincipal, session: SessionDep, page: PageDep
) -> Page[Plan]:
    after = page.position(TEXT_CURSOR)
    plans = await plans_service.search(
        session=session, principal=principal, after=after, limit=page.limit
    )
    items = [Plan.model_validate(p) for p in plans]
    next_cursor = encode_cursor(items[-1].code) if len(items) == page.limit else None
    return Page[Plan](items=items, next_cursor=next_cursor)


@router.post(
    "/plans",
    status_code=status.HTTP_201_CREATED,
    summary="Create a plan (platform admins)",
    responses={
        **AUTH_RESPONSES,
        409: {
            "model": Problem,
            "content": {PROBLEM_CONTENT_TYPE: {}},
            "description": "A plan with this code exists",
        },
    },
)
async def create_plan(draft: PlanCreate, principal: PlatformAdmin, session: SessionDep) -> Plan:
    plan = await plans_service.create(session=session, principal=principal, draft=draft)
    return Plan.model_validate(plan)


@router.get("/plans/{plan_id}", summary="A plan", responses=AUTH_RESPONSES)
async def get_plan(plan_id: PlanId, principal: OptionalPrincipal, session: SessionDep) -> Plan:
    plan = await plans_service.read(session=session, principal=principal, plan_id=plan_id)
    return Plan.model_validate(plan)


@router.patch(
    "/plans/{plan_id}", summary="Change a plan (platform admins)", responses=AUTH_RESPONSES
)
async def update_plan(
    plan_id: PlanId, changes: PlanUpdate, principal: PlatformAdmin, session: SessionDep
) -> Plan:
    plan = await plans_service.update(
        session=session, principal=principal, plan_id=plan_id, changes=changes
    )
    return Plan.model_validate(plan)

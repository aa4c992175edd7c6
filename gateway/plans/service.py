"""Plans: created and changed by platform admins, read by anyone."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.ids import utcnow
from gateway.plans import repository as plans_repository
from gateway.plans.events import PlanChanged
from gateway.plans.models import Plan
from gateway.plans.schemas import PlanCreate, PlanUpdate
from libs.common.auth import Principal, Role
from libs.common.errors import Conflict, NotFound
from libs.common.events import new_event, outbox


async def _announce(session: AsyncSession, plan: Plan, *, by: str) -> None:
    await outbox.add(
        session,
        new_event(
            PlanChanged(
                plan_id=plan.id,
                code=plan.code,
                requests_per_minute=plan.requests_per_minute,
                requests_per_day=plan.requests_per_day,
                requires_token=plan.requires_token,
                published=plan.published,
                changed_by=by,
            ),
            subject=plan.id,
        ),
    )


async def create(*, session: AsyncSession, principal: Principal, draft: PlanCreate) -> Plan:
    """A new plan; its code is unique."""
    if await plans_repository.get_by_code(session, draft.code) is not None:
        raise Conflict(f"A plan with the code {draft.code!r} exists.")
    plan = Plan(**draft.model_dump())
    plans_repository.add(session, plan)
    await session.flush()
    await _announce(session, plan, by=principal.sub)
    return plan


async def read(*, session: AsyncSession, principal: Principal | None, plan_id: str) -> Plan:
    """A plan; an unpublished one only for platform admins."""
    plan = await plans_repository.get(session, plan_id)
    if plan is None or (not plan.published and not _is_admin(principal)):
        raise NotFound(f"No plan {plan_id}.")
    return plan


async def update(
    *, session: AsyncSession, principal: Principal, plan_id: str, changes: PlanUpdate
) -> Plan:
    """Change a plan; every replica applies it to the keys on it at once (an event)."""
    plan = await read(session=session, principal=principal, plan_id=plan_id)
    for name, value in changes.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(plan, name, value)
    plan.updated_at = utcnow()
    await _announce(session, plan, by=principal.sub)
    return plan


async def search(
    *, session: AsyncSession, principal: Principal | None, after: str | None, limit: int
) -> list[Plan]:
    """Published plans; every plan for platform admins."""
    return await plans_repository.page(
        session, published_only=not _is_admin(principal), after=after, limit=limit
    )


def _is_admin(principal: Principal | None) -> bool:
    return principal is not None and principal.has_role(Role.PLATFORM_ADMIN)

"""Usage reports for an application's owners."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.applications import repository as applications_repository
from gateway.applications import service as applications_service
from gateway.edge.limits import Limiter
from gateway.edge.policies import day_limit, key_counter
from gateway.ids import utcnow
from gateway.plans import repository as plans_repository
from gateway.usage import repository as usage_repository
from gateway.usage.schemas import DayUsage, KeyQuota, UsageReport
from libs.common.auth import Principal


async def report(
    *,
    session: AsyncSession,
    principal: Principal,
    application_id: str,
    days: int,
    limiter: Limiter,
) -> UsageReport:
    """The last ``days`` days (today included) and each active key's quota left today."""
    await applications_service.read(
        session=session, principal=principal, application_id=application_id
    )
    since = utcnow().date() - timedelta(days=days - 1)
    totals: defaultdict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in await usage_repository.of_application(session, application_id, since=since):
        day = totals[row.day]
        day[0] += row.calls
        day[1] += row.errors
        day[2] += row.rejected
    quotas = []
    for key in await applications_repository.keys_of(session, application_id):
        if applications_service.key_status(key) != "active":
            continue
        plan = await plans_repository.get(session, key.plan_id)
        if plan is None:
            continue
        used = await limiter.used(key_counter(key.id), day_limit(plan.requests_per_day))
        quotas.append(
            KeyQuota(
                key_id=key.id,
                hint=key.hint,
                plan_code=plan.code,
                requests_per_minute=plan.requests_per_minute,
                requests_per_day=plan.requests_per_day,
                used_today=used,
                quota_left_today=max(0, plan.requests_per_day - used),
            )
        )
    return UsageReport(
        application_id=application_id,
        days=[
            DayUsage(day=day, calls=c[0], errors=c[1], rejected=c[2])
            for day, c in sorted(totals.items())
        ],
        keys=quotas,
    )

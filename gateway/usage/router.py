"""Usage API: an application's owners see its calls, errors and quota left."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from gateway.applications.schemas import ID_PATTERN
from gateway.usage import service as usage_service
from gateway.usage.schemas import UsageReport
from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep

router = APIRouter(tags=["usage"], responses=AUTH_RESPONSES)


@router.get(
    "/applications/{application_id}/usage",
    summary="An application's calls and errors per day, and each key's quota left today",
)
async def application_usage(
    application_id: Annotated[str, Path(pattern=ID_PATTERN)],
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    days: Annotated[int, Query(ge=1, le=90, description="How many days, today included.")] = 7,
) -> UsageReport:
    return await usage_service.report(
        session=session,
        principal=principal,
        application_id=application_id,
        days=days,
        limiter=request.app.state.limiter,
    )

"""The holiday calendar's API: read by anyone signed in, replaced by platform admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from services.workflow.sla import service as sla_service
from services.workflow.sla.schemas import CalendarYear, CalendarYearUpdate

router = APIRouter(tags=["calendar"])

Year = Annotated[int, Path(ge=2000, le=2100, description="The calendar year.")]


@router.get(
    "/calendar/{year}",
    summary="A year's working-day calendar: holidays and make-up working days (调休)",
    responses=AUTH_RESPONSES,
)
async def get_calendar_year(year: Year, _: CurrentPrincipal, session: SessionDep) -> CalendarYear:
    return await sla_service.read_calendar_year(session, year=year)


@router.put(
    "/calendar/{year}",
    summary="Set a year's calendar from the State Council's notice (platform admins)",
    responses=AUTH_RESPONSES,
)
async def put_calendar_year(
    year: Year, update: CalendarYearUpdate, principal: CurrentPrincipal, session: SessionDep
) -> CalendarYear:
    return await sla_service.replace_calendar_year(
        session, principal=principal, year=year, update=update
    )

"""The composite index API: the indicator system's versions and the rankings."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import Database, SessionDep
from services.evaluation import audience
from services.evaluation.index import service as index_service
from services.evaluation.index.schemas import IndexSystem, IndexSystemCreate, Ranking
from services.evaluation.indicators import periods
from services.evaluation.settings import EvaluationSettings

router = APIRouter(tags=["composite index"])


@router.get(
    "/index-systems",
    summary="The built-in indicator system (version 0) and every stored version",
    responses=AUTH_RESPONSES,
)
async def list_index_systems(principal: CurrentPrincipal, session: SessionDep) -> list[IndexSystem]:
    audience.require_reader(principal)
    return await index_service.versions(session=session)


@router.get(
    "/index-systems/current",
    summary="The indicator system rankings use unless told otherwise",
    responses=AUTH_RESPONSES,
)
async def current_index_system(principal: CurrentPrincipal, session: SessionDep) -> IndexSystem:
    audience.require_reader(principal)
    return await index_service.system(session=session, version=None)


@router.get(
    "/index-systems/{version}",
    summary="One version of the indicator system",
    responses=AUTH_RESPONSES,
)
async def get_index_system(
    version: Annotated[int, Path(ge=0, le=1_000_000)],
    principal: CurrentPrincipal,
    session: SessionDep,
) -> IndexSystem:
    audience.require_reader(principal)
    return await index_service.system(session=session, version=version)


@router.post(
    "/index-systems",
    status_code=status.HTTP_201_CREATED,
    summary="Store the next version of dimensions, weights and targets (platform admins)",
    responses=AUTH_RESPONSES,
)
async def create_index_system(
    body: IndexSystemCreate, principal: CurrentPrincipal, session: SessionDep
) -> IndexSystem:
    return await index_service.create(session=session, principal=principal, body=body)


@router.get(
    "/rankings",
    summary="Departments or regions ranked by the composite index for a period",
    response_model=Ranking,
    responses=AUTH_RESPONSES,
)
async def rankings(
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    scope_kind: Literal["department", "region"] = "department",
    level: Literal["province", "city", "county"] = "city",
    system_version: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    period: Annotated[str | None, Query(pattern=periods.PERIOD_PATTERN)] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    settings: EvaluationSettings = request.app.state.settings
    database: Database = request.app.state.database
    # The stored ranking's JSON as it is: it was validated against Ranking when computed.
    body = await index_service.ranking(
        session=session, engine=database.engine, principal=principal, scope_kind=scope_kind,
        period=periods.resolve(period, start, end), version=system_version, region_level=level,
        keep=settings.stored_rankings,
    )  # fmt: skip
    return Response(content=body, media_type="application/json")

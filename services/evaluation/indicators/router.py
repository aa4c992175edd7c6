"""The indicator APIs: definitions, values, series, drill-down, CSV export."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from services.evaluation import audience
from services.evaluation.indicators import periods
from services.evaluation.indicators import service as indicators_service
from services.evaluation.indicators.schemas import (
    SCOPE_PATTERN,
    Breakdown,
    IndicatorDefinition,
    ScopeKind,
    ScopeValues,
    Series,
)

router = APIRouter(tags=["indicators"])

Scope = Annotated[
    str,
    Query(
        pattern=SCOPE_PATTERN,
        description="platform, department:<org id>, region:<GB/T 2260 code> or item:<item id>",
        examples=["department:5d0c6f0f3a4b4c2e9e1f7a8b9c0d1e2f"],
    ),
]
PeriodText = Annotated[
    str | None,
    Query(pattern=periods.PERIOD_PATTERN, description="YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD"),
]
From = Annotated[date | None, Query(alias="from", description="First day (with to).")]
To = Annotated[date | None, Query(alias="to", description="Last day, included.")]


@router.get("/indicators", summary="Every indicator: name, unit and formula")
async def list_indicators() -> list[IndicatorDefinition]:
    return indicators_service.definitions()


@router.get(
    "/indicators/values",
    summary="Every indicator of one scope for one period",
    responses=AUTH_RESPONSES,
)
async def indicator_values(
    scope: Scope,
    principal: CurrentPrincipal,
    session: SessionDep,
    period: PeriodText = None,
    start: From = None,
    end: To = None,
) -> ScopeValues:
    audience.require_reader(principal)
    return await indicators_service.values(
        session=session, principal=principal, scope=scope,
        period=periods.resolve(period, start, end),
    )  # fmt: skip


@router.get(
    "/indicators/series",
    summary="Indicators of one scope, day by day or month by month",
    responses=AUTH_RESPONSES,
)
async def indicator_series(
    scope: Scope,
    principal: CurrentPrincipal,
    session: SessionDep,
    indicator: Annotated[
        list[str], Query(max_length=40, description="Repeat; all if omitted.")
    ] = [],  # noqa: B006
    granularity: Literal["day", "month"] = "day",
    period: PeriodText = None,
    start: From = None,
    end: To = None,
) -> Series:
    audience.require_reader(principal)
    return await indicators_service.series(
        session=session, principal=principal, scope=scope,
        period=periods.resolve(period, start, end), indicators=indicator,
        granularity=granularity,
    )  # fmt: skip


@router.get(
    "/indicators/breakdown",
    summary="Drill down: a scope and its regions, departments or items",
    responses=AUTH_RESPONSES,
)
async def indicator_breakdown(
    scope: Scope,
    by: Literal["region", "department", "item"],
    principal: CurrentPrincipal,
    session: SessionDep,
    period: PeriodText = None,
    start: From = None,
    end: To = None,
) -> Breakdown:
    audience.require_reader(principal)
    return await indicators_service.breakdown(
        session=session, principal=principal, scope=scope, by=by,
        period=periods.resolve(period, start, end),
    )  # fmt: skip


@router.get(
    "/indicators/export.csv",
    summary="Daily figures as CSV, streamed (one line per scope and day)",
    responses={**AUTH_RESPONSES, 200: {"content": {"text/csv": {}}}},
    response_class=StreamingResponse,
)
async def export_indicators(
    scope_kind: ScopeKind,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    scope_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    period: PeriodText = None,
    start: From = None,
    end: To = None,
) -> StreamingResponse:
    audience.require_reader(principal)
    chosen = periods.resolve(period, start, end)
    ids, names = await indicators_service.check_export(
        session=session, principal=principal, scope_kind=scope_kind,
        scope_id="" if scope_kind == "platform" else scope_id,
    )  # fmt: skip
    lines = indicators_service.export_csv(
        database=request.app.state.database, scope_kind=scope_kind, ids=ids, names=names,
        period=chosen,
    )  # fmt: skip
    filename = f"pingtai-indicators-{scope_kind}-{chosen.label().replace('/', '_')}.csv"
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )

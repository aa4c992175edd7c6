"""The evaluation dashboard (评价看板): the composite index, rankings of departments and regions as
server-rendered SVG, drill-down into one scope's indicators over time, CSV export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from libs.common.database import SessionDep
from portal.charts import bar_chart, line_chart
from portal.i18n import _, pick
from portal.platform import relay
from portal.sessions.models import PortalSession
from portal.web import platform, render, require_roles, token_of

router = APIRouter(prefix="/evaluation", include_in_schema=False)

Evaluator = Annotated[PortalSession, require_roles("evaluator", "platform_admin")]
Period = Annotated[str, Query(pattern=r"^(\d{4}(-\d{2})?)?$")]
ScopeKind = Literal["department", "region"]


def _period(period: str) -> str:
    return period or datetime.now(UTC).strftime("%Y-%m")


@router.get("", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    db: SessionDep,
    visitor: Evaluator,
    period: Period = "",
    scope_kind: ScopeKind = "department",
) -> HTMLResponse:
    """Rankings by the composite index for a month (or year), with the platform's figures."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    chosen = _period(period)
    ranking = await api.get_json(
        "/api/evaluation/v1/rankings", token=token,
        params={"scope_kind": scope_kind, "period": chosen},
    )  # fmt: skip
    values = await api.get_json(
        "/api/evaluation/v1/indicators/values", token=token,
        params={"scope": "platform", "period": chosen},
    )  # fmt: skip
    indicators = await api.get_json("/api/evaluation/v1/indicators")
    chart = bar_chart(
        [
            (str(row.get("name") or row["scope_id"]), float(row.get("composite") or 0.0))
            for row in ranking["items"]
        ],
        maximum=100.0,
        title=_("Composite index ranking"),
    )
    return render(request, "evaluation.html", {
        "ranking": ranking, "values": values, "indicators": indicators, "chart": chart,
        "period": chosen, "scope_kind": scope_kind,
    })  # fmt: skip


@router.get("/{scope_kind}/{scope_id}", response_class=HTMLResponse)
async def drill_down(
    request: Request,
    db: SessionDep,
    visitor: Evaluator,
    scope_kind: ScopeKind,
    scope_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    period: Period = "",
    indicator: Annotated[str, Query(pattern=r"^[a-z_]{1,64}$")] = "applications_submitted",
) -> HTMLResponse:
    """One department or region: every indicator for the period, and one as a series."""
    token = await token_of(request, db, visitor)
    api = platform(request)
    chosen = _period(period)
    scope = f"{scope_kind}:{scope_id}"
    values = await api.get_json(
        "/api/evaluation/v1/indicators/values",
        token=token,
        params={"scope": scope, "period": chosen},
    )
    series = await api.get_json(
        "/api/evaluation/v1/indicators/series", token=token,
        params={"scope": scope, "indicator": indicator, "period": chosen, "granularity": "day"},
    )  # fmt: skip
    indicators = await api.get_json("/api/evaluation/v1/indicators")
    points = [
        (str(p.get("start", "")), p.get("values", {}).get(indicator))
        for p in series.get("points", [])
    ]
    chart = line_chart(points, title=_names(indicators).get(indicator, indicator))
    return render(request, "evaluation_scope.html", {
        "values": values, "indicators": indicators, "indicator": indicator, "period": chosen,
        "scope_kind": scope_kind, "scope_id": scope_id, "chart": chart,
    })  # fmt: skip


@router.get("/export.csv")
async def export(
    request: Request,
    db: SessionDep,
    visitor: Evaluator,
    period: Period = "",
    scope_kind: Literal["platform", "department", "region"] = "department",
) -> Response:
    """The daily figures as CSV, streamed from the evaluation service."""
    token = await token_of(request, db, visitor)
    http = platform(request).http
    upstream = await http.send(
        http.build_request(
            "GET", "/api/evaluation/v1/indicators/export.csv",
            params={"scope_kind": scope_kind, "period": _period(period)},
            headers={"Authorization": f"Bearer {token}"},
        ),
        stream=True,
    )  # fmt: skip
    if upstream.status_code != 200:
        await upstream.aclose()
        return Response(status_code=upstream.status_code)

    disposition = upstream.headers.get("content-disposition", "attachment; filename=indicators.csv")
    return StreamingResponse(relay(upstream), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": disposition})  # fmt: skip


def _names(indicators: list[dict[str, Any]]) -> dict[str, str]:
    return {i["key"]: pick(i.get("name_zh"), i.get("name_en")) for i in indicators}

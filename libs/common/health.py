"""Liveness, readiness and metrics endpoints, the same on every part."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel

CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ReadinessCheck:
    """A dependency /readyz asks: ``probe`` raises when it fails and may return a detail."""

    name: str
    probe: Callable[[], Awaitable[str | None]]
    # A non-critical failure reports "degraded" but keeps the part in service (e.g. NATS away:
    # writes go on and the outbox holds their events).
    critical: bool = True


class CheckResult(BaseModel):
    ok: bool
    critical: bool
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "unready"]
    part: str
    checks: dict[str, CheckResult]


async def _run(check: ReadinessCheck) -> CheckResult:
    try:
        detail = await asyncio.wait_for(check.probe(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return CheckResult(ok=False, critical=check.critical, detail="timed out")
    except Exception as exc:  # every failure is a "not ready" answer, never a 500
        return CheckResult(ok=False, critical=check.critical, detail=f"{type(exc).__name__}: {exc}")
    return CheckResult(ok=True, critical=check.critical, detail=detail)


async def readiness(part: str, checks: Sequence[ReadinessCheck]) -> Readiness:
    """Ask every check at once and sum up."""
    results = await asyncio.gather(*(_run(c) for c in checks))
    by_name = {c.name: r for c, r in zip(checks, results, strict=True)}
    if any(not r.ok and r.critical for r in results):
        status: Literal["ready", "degraded", "unready"] = "unready"
    elif any(not r.ok for r in results):
        status = "degraded"
    else:
        status = "ready"
    return Readiness(status=status, part=part, checks=by_name)


def health_router() -> APIRouter:
    """`/healthz`, `/readyz`, `/metrics`; checks come from `app.state.readiness_checks`."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz(request: Request) -> dict[str, str]:
        return {"status": "ok", "part": request.app.state.part}

    @router.get(
        "/readyz",
        summary="The part and what it depends on answer",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A critical dependency is down"}},
    )
    async def readyz(request: Request) -> Any:
        result = await readiness(request.app.state.part, request.app.state.readiness_checks)
        code = 503 if result.status == "unready" else 200
        return JSONResponse(result.model_dump(), status_code=code)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router

"""/healthz, /readyz and /metrics, the same on every part."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families

from libs.common import health
from libs.common.health import ReadinessCheck
from tests.common.conftest import build_app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sample")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_healthz_answers_while_the_process_lives(tmp_path: Path) -> None:
    app = build_app(database_url=f"sqlite+aiosqlite:///{tmp_path}/sample.db")
    async with _client(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "part": "sample"}


async def test_readyz_is_ready_with_a_working_database(database_url: str) -> None:
    app = build_app(database_url=database_url)
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["part"] == "sample"
    assert body["checks"]["database"] == {"ok": True, "critical": True, "detail": None}


async def test_readyz_is_unready_when_the_sqlite_file_cannot_be_opened(tmp_path: Path) -> None:
    # A folder that cannot exist, even for root: its parent is a regular file.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    app = build_app(database_url=f"sqlite+aiosqlite:///{blocker}/var/sample.db")
    async with app.router.lifespan_context(app), _client(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unready"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["detail"]


async def test_readyz_is_unready_when_postgresql_does_not_answer() -> None:
    url = f"postgresql+asyncpg://pingtai@127.0.0.1:{_closed_port()}/pingtai"
    app = build_app(database_url=url)
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unready"
    assert body["checks"]["database"]["ok"] is False


async def test_a_failing_non_critical_check_is_degraded_but_in_service(database_url: str) -> None:
    async def nats_away() -> str | None:
        raise ConnectionRefusedError("nats://127.0.0.1:4222")

    async def cache_fine() -> str | None:
        return "3 entries"

    app = build_app(
        database_url=database_url,
        readiness_checks=[
            ReadinessCheck("nats", nats_away, critical=False),
            ReadinessCheck("cache", cache_fine, critical=False),
        ],
    )
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["nats"] == {
        "ok": False,
        "critical": False,
        "detail": "ConnectionRefusedError: nats://127.0.0.1:4222",
    }
    assert body["checks"]["cache"] == {"ok": True, "critical": False, "detail": "3 entries"}


async def test_a_failing_critical_check_is_unready(tmp_path: Path) -> None:
    async def broken() -> str | None:
        raise RuntimeError("key store unreadable")

    app = build_app(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/sample.db",
        readiness_checks=[ReadinessCheck("keys", broken)],
    )
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unready"


async def test_metrics_count_requests_by_route_template(tmp_path: Path) -> None:
    router = APIRouter(prefix="/v1")

    @router.get("/widgets/{widget_id}")
    async def read_widget(widget_id: int) -> dict[str, int]:
        return {"id": widget_id}

    app = build_app(routers=[router], database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db")
    async with _client(app) as client:
        for widget_id in (1, 2, 3):
            assert (await client.get(f"/v1/widgets/{widget_id}")).status_code == 200
        assert (await client.get("/v1/widgets/x")).status_code == 422
        assert (await client.get("/v1/random/path/7")).status_code == 404
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name == "pingtai_http_requests_total" and s.labels["part"] == "sample"
    }
    # The registry is the process's: other tests may have counted too, never fewer than ours.
    assert samples[("GET", "/v1/widgets/{widget_id}", "200")] >= 3
    assert samples[("GET", "/v1/widgets/{widget_id}", "422")] >= 1
    assert samples[("GET", "<unmatched>", "404")] >= 1
    assert not any(route.startswith(("/v1/widgets/1", "/v1/random")) for _, route, _ in samples)
    assert "pingtai_http_request_duration_seconds_bucket" in response.text


async def test_a_check_that_hangs_times_out_as_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough for the database's own check (its first connection) on a busy machine, far
    # shorter than the hang.
    monkeypatch.setattr(health, "CHECK_TIMEOUT_S", 1.0)

    async def hangs() -> str | None:
        await asyncio.sleep(10)
        return None

    app = build_app(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/sample.db",
        readiness_checks=[ReadinessCheck("nats", hangs, critical=False)],
    )
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["nats"] == {"ok": False, "critical": False, "detail": "timed out"}

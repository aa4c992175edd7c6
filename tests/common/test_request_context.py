"""The request id and the trace: echoed, replaced when malformed, carried to the next part."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace

from libs.common.context import current_request_id
from libs.common.http import service_client
from libs.common.telemetry import configure_tracing
from tests.common.conftest import build_app

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


@pytest.fixture
def echo_app(tmp_path: Path) -> FastAPI:
    router = APIRouter(prefix="/v1")

    @router.get("/echo")
    async def echo(request: Request) -> dict[str, str | None]:
        return {
            "request_id": current_request_id(),
            "x_request_id": request.headers.get("x-request-id"),
            "traceparent": request.headers.get("traceparent"),
        }

    return build_app(routers=[router], database_url=f"sqlite+aiosqlite:///{tmp_path}/b.db")


async def test_a_well_formed_request_id_is_echoed(echo_app: FastAPI) -> None:
    async with _client(echo_app) as client:
        response = await client.get("/v1/echo", headers={"X-Request-ID": "dept-42.req:7_a"})
    assert response.headers["x-request-id"] == "dept-42.req:7_a"
    assert response.json()["request_id"] == "dept-42.req:7_a"


@pytest.mark.parametrize(
    "bad", ["has spaces", "x" * 129, "semi;colon", "<script>", "", "é-accented"]
)
async def test_a_malformed_request_id_is_replaced(echo_app: FastAPI, bad: str) -> None:
    async with _client(echo_app) as client:
        response = await client.get("/v1/echo", headers=[(b"X-Request-ID", bad.encode("utf-8"))])
    request_id = response.headers["x-request-id"]
    assert request_id != bad
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json()["request_id"] == request_id


async def test_a_missing_request_id_is_made_and_differs_per_request(echo_app: FastAPI) -> None:
    async with _client(echo_app) as client:
        first = (await client.get("/v1/echo")).headers["x-request-id"]
        second = (await client.get("/v1/echo")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


async def test_the_request_id_does_not_outlive_the_request(echo_app: FastAPI) -> None:
    async with _client(echo_app) as client:
        await client.get("/v1/echo", headers={"X-Request-ID": "leaky"})
    assert current_request_id() is None


async def test_service_client_sends_no_request_id_outside_a_request(echo_app: FastAPI) -> None:
    async with service_client("http://b", transport=httpx.ASGITransport(echo_app)) as client:
        body = (await client.get("/v1/echo")).json()
    assert body["x_request_id"] is None


async def test_request_id_and_trace_travel_from_one_part_to_the_next(
    echo_app: FastAPI, tmp_path: Path
) -> None:
    configure_tracing("pingtai-test")
    router = APIRouter(prefix="/v1")

    @router.get("/forward")
    async def forward() -> dict[str, object]:
        span = trace.get_current_span().get_span_context()
        async with service_client("http://b", transport=httpx.ASGITransport(echo_app)) as b:
            seen_by_b = (await b.get("/v1/echo")).json()
        return {"trace_id": format(span.trace_id, "032x"), "valid": span.is_valid, "b": seen_by_b}

    app_a = build_app(routers=[router], database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db")
    async with _client(app_a) as client:
        response = await client.get("/v1/forward", headers={"X-Request-ID": "citizen-req-1"})
    body = response.json()
    assert response.status_code == 200
    assert body["valid"] is True
    assert body["b"]["x_request_id"] == "citizen-req-1"
    assert body["b"]["request_id"] == "citizen-req-1"
    match = TRACEPARENT.match(body["b"]["traceparent"] or "")
    assert match, body["b"]["traceparent"]
    assert match.group(1) == body["trace_id"]


async def test_an_incoming_trace_continues_through_both_parts(
    echo_app: FastAPI, tmp_path: Path
) -> None:
    configure_tracing("pingtai-test")
    router = APIRouter(prefix="/v1")

    @router.get("/forward")
    async def forward() -> dict[str, object]:
        async with service_client("http://b", transport=httpx.ASGITransport(echo_app)) as b:
            return dict((await b.get("/v1/echo")).json())

    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    app_a = build_app(routers=[router], database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db")
    async with _client(app_a) as client:
        response = await client.get(
            "/v1/forward", headers={"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"}
        )
    seen_by_b = response.json()
    match = TRACEPARENT.match(seen_by_b["traceparent"] or "")
    assert match, seen_by_b
    assert match.group(1) == caller_trace
    assert match.group(2) != "00f067aa0ba902b7"  # B's parent is A's span, not the caller's
    assert seen_by_b["x_request_id"] == response.headers["x-request-id"]

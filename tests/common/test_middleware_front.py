"""Front routes (``create_service_app(front_routes=...)``): answered inside the part's own
middleware, before FastAPI's exception layer and router, with the same request id, metrics,
access log and problem documents as any other route."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import REGISTRY
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from libs.common.app import create_service_app
from libs.common.context import current_request_id
from libs.common.errors import NotFound
from tests.common.conftest import SampleSettings

PATH = "/v1/things/{thing_id}"
ONLY = "/v1/only/{thing_id}"  # a front route's path no route of the router has


async def _thing(request: Request) -> Response:
    thing_id = request.path_params["thing_id"]
    if thing_id == "missing":
        raise NotFound(f"No thing {thing_id}.")
    if thing_id == "teapot":
        raise HTTPException(418, "I'm a teapot.")
    if thing_id == "invalid":
        raise RequestValidationError(
            [{"type": "string_too_short", "loc": ("query", "q"), "msg": "too short", "input": ""}]
        )
    if thing_id == "broken":
        raise RuntimeError("a bug")
    return JSONResponse(
        {
            "thing_id": thing_id,
            "request_id": current_request_id(),
            "layers": sorted(k for k in request.scope if k.startswith(("fastapi", "starlette"))),
        }
    )


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    router = APIRouter(prefix="/v1")

    @router.post("/things/{thing_id}")
    async def make_thing(thing_id: str) -> dict[str, str]:
        return {"made": thing_id}

    @router.get("/others")
    async def others() -> dict[str, str]:
        return {"other": "yes"}

    return create_service_app(
        SampleSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/f.db"),
        title="Sample",
        description="Front routes.",
        routers=[router],
        configure_process=False,
        front_routes=[Route(PATH, _thing, methods=["GET"]), Route(ONLY, _thing, methods=["GET"])],
    )


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


def _served(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "pingtai_http_requests_total",
        {"part": "sample", "method": "GET", "route": route, "status": status},
    )
    return value or 0.0


async def test_a_front_route_answers_below_fastapi_with_the_request_id(app: FastAPI) -> None:
    async with _client(app) as client:
        response = await client.get("/v1/things/t-1", headers={"X-Request-ID": "front-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "front-1"
    body = response.json()
    assert body["thing_id"] == "t-1"
    assert body["request_id"] == "front-1"
    # Neither FastAPI's exit stacks nor Starlette's exception middleware were on the way.
    assert body["layers"] == []


async def test_a_front_route_is_logged_and_counted_under_its_template(app: FastAPI) -> None:
    before = _served(PATH, "200")
    with capture_logs() as logs:
        async with _client(app) as client:
            await client.get("/v1/things/t-2")
    assert _served(PATH, "200") == before + 1
    [line] = [entry for entry in logs if entry["event"] == "request"]
    assert line["route"] == PATH
    assert line["path"] == "/v1/things/t-2"
    assert line["status"] == 200


@pytest.mark.parametrize(
    ("thing_id", "status", "code"),
    [("missing", 404, "not-found"), ("teapot", 418, None), ("invalid", 422, "validation-error")],
)
async def test_errors_are_the_same_problem_documents_as_elsewhere(
    app: FastAPI, thing_id: str, status: int, code: str | None
) -> None:
    async with _client(app) as client:
        response = await client.get(f"/v1/things/{thing_id}")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"]
    problem = response.json()
    assert problem["status"] == status
    if code is not None:
        assert problem["type"].endswith(code)


async def test_an_unexpected_error_is_a_500_problem_without_a_trace(app: FastAPI) -> None:
    before = _served(PATH, "500")
    with capture_logs() as logs:
        async with _client(app) as client:
            response = await client.get("/v1/things/broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert "a bug" not in response.text
    assert any(entry["event"] == "unhandled_error" for entry in logs)
    assert _served(PATH, "500") == before + 1


async def test_other_methods_and_paths_go_through_the_router(app: FastAPI) -> None:
    async with _client(app) as client:
        made = await client.post("/v1/things/t-3")
        other = await client.get("/v1/others")
        missing = await client.get("/v1/nothing")
        head = await client.head("/v1/things/t-4")
    assert made.json() == {"made": "t-3"}
    assert other.json() == {"other": "yes"}
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    # HEAD is part of a GET route, as in Starlette's router.
    assert head.status_code == 200


async def test_a_method_no_route_takes_is_a_405_naming_every_allowed_method(app: FastAPI) -> None:
    """A path only a front route has (GET, HEAD): another method is 405 with them in Allow,
    not the router's 404."""
    async with _client(app) as client:
        put = await client.put("/v1/only/t-6")
        delete = await client.delete("/v1/only/t-6")
        got = await client.get("/v1/only/t-6")
    assert put.status_code == delete.status_code == 405
    assert put.headers["content-type"] == "application/problem+json"
    assert put.json()["status"] == 405
    assert put.headers["allow"] == delete.headers["allow"] == "GET, HEAD"
    assert got.json()["thing_id"] == "t-6"


async def test_the_405_merges_the_routers_methods_on_that_path(app: FastAPI) -> None:
    """PUT on a path the front route (GET, HEAD) and the router (POST) share."""
    async with _client(app) as client:
        put = await client.put("/v1/things/t-7")
        made = await client.post("/v1/things/t-7")
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, HEAD, POST"
    assert made.json() == {"made": "t-7"}


async def test_a_front_route_keeps_the_body_limit(app: FastAPI) -> None:
    async with _client(app) as client:
        response = await client.request(
            "GET",
            "/v1/things/t-5",
            content=b"x" * 10,
            headers={"Content-Length": str(10**9)},
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

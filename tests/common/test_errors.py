"""Every error a part can answer is an RFC 9457 problem document carrying the request id."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from libs.common.errors import PingtaiError, is_unstorable_text
from tests.common.conftest import build_app

MAX_BODY = 1024


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=20)
    days: int = Field(ge=1, le=30)


class TooEarly(PingtaiError):
    status = 425
    code = "too-early"
    title = "Too early"


router = APIRouter(prefix="/v1")


@router.post("/rules", status_code=201)
async def create_rule(rule: Rule) -> Rule:
    return rule


@router.get("/rules/{rule_id}")
async def read_rule(rule_id: int) -> dict[str, int]:
    return {"id": rule_id}


@router.post("/early")
async def early() -> None:
    raise TooEarly("Come back after nine.", retry_after_seconds=60)


@router.post("/clash")
async def clash() -> None:
    raise TooEarly("Still too early.", status=200, title="Fine", code="ok", wait=5)


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        routers=[router],
        database_url=f"sqlite+aiosqlite:///{tmp_path}/sample.db",
        max_body_bytes=MAX_BODY,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://sample"
    ) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    if code is None:
        assert body["type"] == "about:blank"
    else:
        assert body["type"] == f"https://pingtai.dev/problems/{code}"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


async def test_an_invalid_body_names_each_bad_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/rules", json={"name": "", "days": "3", "colour": "red"})
    body = assert_problem(response, 422, "validation-error")
    errors = body["errors"]
    assert isinstance(errors, list)
    by_field = {tuple(e["loc"]): e["type"] for e in errors}
    assert by_field == {
        ("body", "name"): "string_too_short",
        ("body", "days"): "int_type",  # strict: "3" is not coerced
        ("body", "colour"): "extra_forbidden",
    }
    assert all(e["msg"] for e in errors)


async def test_a_bad_path_parameter_is_a_validation_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/v1/rules/abc"), 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["path", "rule_id"]]


async def test_malformed_json_is_a_validation_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/rules", content=b'{"name": "x", "days":', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation-error")
    assert [e["type"] for e in body["errors"]] == ["json_invalid"]


async def test_an_unknown_route_is_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nowhere"), 404, "not-found")


async def test_a_wrong_method_is_method_not_allowed(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/rules")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "POST"


async def test_a_body_over_the_limit_by_content_length_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/rules", content=b"x" * (MAX_BODY + 1), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


async def test_a_chunked_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterable[bytes]:
        for _ in range(4):
            yield b"x" * (MAX_BODY // 2)

    request = client.build_request(
        "POST", "/v1/rules", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert_problem(await client.send(request), 413, "payload-too-large")


async def test_a_body_within_the_limit_passes(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/rules", json={"name": "ok", "days": 3})
    assert response.status_code == 201
    assert response.json() == {"name": "ok", "days": 3}


async def test_a_domain_error_carries_its_status_code_and_extras(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.post("/v1/early"), 425, "too-early")
    assert body["title"] == "Too early"
    assert body["detail"] == "Come back after nine."
    assert body["retry_after_seconds"] == 60


async def test_an_unexpected_error_is_a_500_problem_without_internals(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/boom")
    body = assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["request_id"]


async def test_extras_cannot_replace_a_problems_standard_members(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.post("/v1/clash"), 425, "too-early")
    assert body["title"] == "Too early"
    assert body["detail"] == "Still too early."
    assert body["wait"] == 5


class _DriverError(Exception):
    """A driver's own error, as a DBAPI cursor used directly raises it (no SQLAlchemy wrapper)."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_text_the_database_cannot_hold_is_recognised_however_it_is_wrapped() -> None:
    assert is_unstorable_text(_DriverError("22021"))  # NUL, PostgreSQL
    assert is_unstorable_text(_DriverError("22P05"))
    try:
        "a\ud800".encode()
    except UnicodeEncodeError as error:
        surrogate = error
    wrapped = RuntimeError("driver")
    wrapped.__cause__ = surrogate
    assert is_unstorable_text(wrapped)
    assert not is_unstorable_text(_DriverError("22003"))  # numeric out of range: our fault
    assert not is_unstorable_text(UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range"))
    assert not is_unstorable_text(RuntimeError("boom"))


@pytest.mark.parametrize(
    ("url", "registered"),
    [
        ("sqlite+aiosqlite:///var/part.db", False),
        ("postgresql+asyncpg://pingtai@db/pingtai", True),
        ("", True),  # no URL to read: registered, to be safe
    ],
)
def test_asyncpgs_adapter_errors_are_handled_only_where_postgresql_may_run(
    url: str, registered: bool
) -> None:
    from fastapi import FastAPI
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

    from libs.common.errors import install_error_handlers

    app = FastAPI()
    app.state.settings = type("Settings", (), {"database_url": url})()
    install_error_handlers(app)
    assert (AsyncAdapt_asyncpg_dbapi.Error in app.exception_handlers) is registered


def test_a_part_on_sqlite_never_imports_postgresqls_dialect() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tests.common.conftest import build_app\n"
        "import libs.common.auth, libs.common.database, libs.common.http\n"
        "build_app(database_url='sqlite+aiosqlite:///unused.db')\n"
        "print(sorted(m for m in sys.modules if 'postgresql' in m or 'asyncpg' in m))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"

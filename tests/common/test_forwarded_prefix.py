"""Behind the gateway, a part's docs and OpenAPI name the URLs clients really call."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter

from tests.common.conftest import build_app

router = APIRouter(prefix="/v1")


@router.get("/things")
async def things() -> list[str]:
    return ["a"]


def _client(tmp_path: Path) -> httpx.AsyncClient:
    app = build_app(routers=[router], var_dir=tmp_path)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://part")


async def test_the_gateways_prefix_becomes_the_root_of_docs_and_openapi(tmp_path: Path) -> None:
    prefix = {"X-Forwarded-Prefix": "/api/sample"}
    async with _client(tmp_path) as client:
        docs = await client.get("/docs", headers=prefix)
        assert "/api/sample/openapi.json" in docs.text
        spec = (await client.get("/openapi.json", headers=prefix)).json()
        assert spec["servers"] == [{"url": "/api/sample"}]
        # Routing is unchanged: the gateway already stripped the prefix from the path.
        assert (await client.get("/v1/things", headers=prefix)).json() == ["a"]


async def test_a_malformed_prefix_is_ignored(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        docs = await client.get("/docs", headers={"X-Forwarded-Prefix": "javascript:alert(1)"})
        assert "javascript" not in docs.text
        assert "'/openapi.json'" in docs.text or '"/openapi.json"' in docs.text


async def test_the_gateway_ignores_a_prefix_sent_by_its_own_clients(tmp_path: Path) -> None:
    from gateway.app import create_app
    from gateway.settings import GatewaySettings

    app = create_app(GatewaySettings(var_dir=tmp_path), configure_process=False)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        docs = await client.get("/docs", headers={"X-Forwarded-Prefix": "/api/evil"})
        assert docs.status_code == 200
        assert "/api/evil" not in docs.text

"""The merged OpenAPI document: built from every part's real document, valid, no name clashes,
and every operation in it reaches its part at the path the part declared."""

from __future__ import annotations

import importlib
import re
import warnings
from typing import Any

import aiohttp
import pytest
from openapi_spec_validator import validate

from gateway.developers.openapi import merge_documents
from gateway.routes import RouteTable, default_routes, with_policies
from gateway.settings import SERVICE_PARTS, RoutePolicy
from tests.gateway.conftest import StartPlatform
from tests.gateway.test_keys import call

PARAM = re.compile(r"\{([^}]+)\}")


def real_document(part: str) -> dict[str, Any]:
    """The part's own OpenAPI document, as its app generates it (no database needed)."""
    module = importlib.import_module(f"services.{part}.app")
    settings_module = importlib.import_module(f"services.{part}.settings")
    settings_class = next(
        getattr(settings_module, name)
        for name in dir(settings_module)
        if name.endswith("Settings") and name.lower().startswith(part)
    )
    settings = settings_class(
        database_url="sqlite+aiosqlite:///:memory:",
        secret_key="openapi-tests-secret-0123456789abcdef",
        nats_url=None,
    )
    with warnings.catch_warnings():
        # A part's own duplicate operation id (FastAPI only warns) fails here.
        warnings.filterwarnings("error", "Duplicate Operation ID", UserWarning)
        document: dict[str, Any] = module.create_app(settings).openapi()
    return document


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return {part: real_document(part) for part in SERVICE_PARTS}


def _own_document() -> dict[str, Any]:
    from gateway.app import create_app
    from gateway.settings import GatewaySettings

    app = create_app(GatewaySettings(database_url="sqlite+aiosqlite:///:memory:"),
                     configure_process=False)  # fmt: skip
    document: dict[str, Any] = app.openapi()
    return document


def test_the_merged_document_validates_and_keeps_every_operation(
    documents: dict[str, dict[str, Any]],
) -> None:
    table = RouteTable(
        with_policies(default_routes(), {"/api/exchange": RoutePolicy(auth="key_and_token")})
    )
    merged = merge_documents(_own_document(), documents, table, version="test")
    validate(merged)  # openapi-spec-validator: OpenAPI 3.1 and every $ref resolves

    def operations(document: dict[str, Any]) -> int:
        return sum(
            1 for item in document["paths"].values() for m in item if m in {"get", "post", "put",
            "patch", "delete", "head", "options"}
        )  # fmt: skip

    skipped = {"/healthz", "/readyz"}
    expected = sum(
        operations({"paths": {k: v for k, v in d["paths"].items() if k not in skipped}})
        for d in documents.values()
    )
    own = _own_document()
    own_ops = operations({"paths": {k: v for k, v in own["paths"].items() if k not in skipped}})
    assert operations(merged) == expected + own_ops
    # Every part's components kept apart, under its own name; ids unique.
    names = merged["components"]["schemas"]
    for part in SERVICE_PARTS:
        for name in documents[part].get("components", {}).get("schemas", {}):
            assert f"{part}.{name}" in names
    ids = [
        op["operationId"]
        for item in merged["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids))
    assert set(merged["components"]["securitySchemes"]) >= {"AccessToken", "ApiKey"}
    # identity's OpenID endpoints at the root, the rest under /api/identity.
    assert "/oauth2/token" in merged["paths"]
    assert not any(p.startswith("/api/identity/oauth2") for p in merged["paths"])
    # The exchange route needs a key and a token: its operations say so.
    for path, item in merged["paths"].items():
        if path.startswith("/api/exchange/"):
            for op in item.values():
                assert all({"ApiKey", "AccessToken"} <= set(r) for r in op["security"])


async def test_every_operation_is_reachable_through_the_gateway(
    platform: StartPlatform, client: aiohttp.ClientSession, documents: dict[str, dict[str, Any]]
) -> None:
    async with platform(upstreams_all_up=True) as p:
        for part, fake in p.parts.items():
            fake.openapi = documents.get(part)
        response, merged = await call(client, "GET", f"{p.url}/openapi.json")
        assert response.status == 200
        validate(merged)
        assert merged["x-pingtai-parts"] == {
            "gateway": "available",
            **dict.fromkeys(SERVICE_PARTS, "available"),
        }
        checked = 0
        for part, document in documents.items():
            for path, item in document["paths"].items():
                if path in {"/healthz", "/readyz"}:
                    continue
                concrete = PARAM.sub(lambda m: f"x-{m.group(1)}", path)
                public = concrete if path.startswith(("/oauth2", "/.well-known")) else (
                    f"/api/{part}{concrete}"
                )  # fmt: skip
                assert any(
                    PARAM.sub(lambda m: f"x-{m.group(1)}", k) == public for k in merged["paths"]
                ), public
                for method in item:
                    if method not in {"get", "post", "put", "patch", "delete"}:
                        continue
                    response, echo = await call(client, method.upper(), f"{p.url}{public}")
                    assert response.status == 200, (method, public, echo)
                    if public == "/.well-known/jwks.json":  # the fake identity serves keys there
                        assert "keys" in echo
                        continue
                    assert (echo["part"], echo["path"]) == (part, concrete), public
                    checked += 1
        assert checked > 50
        # The interactive docs read the merged document.
        async with client.get(f"{p.url}/docs") as docs:
            assert docs.status == 200
            assert "/openapi.json" in await docs.text()
        async with client.get(f"{p.url}/developers") as page:
            text = await page.text()
            assert page.status == 200
            assert "/api/catalog" in text and "Plans" in text
        _, apis = await call(client, "GET", f"{p.url}/v1/apis")
        assert {a["part"] for a in apis} == set(SERVICE_PARTS)
        assert all(a["available"] and a["operations"] > 0 for a in apis)

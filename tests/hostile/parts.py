"""Every part's app in process, on a migrated database, trusting the tests' token issuer.

``build_app`` is what the fuzzing (sync, schemathesis' own event loop) and the targeted tests
(async, pytest's loop) share: the same settings and verifier the parts' own test fixtures use.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from libs.common.auth import JwksCache, TokenVerifier
from tests.conftest import migrated
from tests.identity.conftest import ISSUER, SECRET, Issuer

# Nothing listens here: a part that calls another (workflow -> exchange) gets a connection error.
UNREACHABLE = "http://127.0.0.1:9"
# Smaller than the default (10 MiB) so the oversized-body cases stay quick; the same code path.
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Part:
    """How to build one part: its package, settings class and the settings it needs in tests."""

    name: str
    package: str
    settings_class: str
    settings: dict[str, Any] = field(default_factory=dict)

    def create(self, database_url: str) -> FastAPI:
        """The part's app (not started) on ``database_url``."""
        module = importlib.import_module(f"{self.package}.settings")
        settings = getattr(module, self.settings_class)(
            database_url=database_url,
            issuer=ISSUER,
            nats_url=None,
            max_body_bytes=MAX_BODY_BYTES,
            **self.settings,
        )
        app_module = importlib.import_module(f"{self.package}.app")
        if self.name == "gateway":
            app: FastAPI = app_module.create_app(settings, configure_process=False)
        else:
            app = app_module.create_app(settings)
        return app


PARTS: dict[str, Part] = {
    part.name: part
    for part in (
        Part("identity", "services.identity", "IdentitySettings", {"secret_key": SECRET}),
        Part("catalog", "services.catalog", "CatalogSettings"),
        Part("exchange", "services.exchange", "ExchangeSettings"),
        Part(
            "workflow",
            "services.workflow",
            "WorkflowSettings",
            {"exchange_url": UNREACHABLE, "gateway_url": UNREACHABLE},
        ),
        Part("evaluation", "services.evaluation", "EvaluationSettings"),
        Part(
            "gateway",
            "gateway",
            "GatewaySettings",
            {
                "upstreams": dict.fromkeys(
                    ("identity", "catalog", "exchange", "workflow", "evaluation", "portal"),
                    UNREACHABLE,
                )
            },
        ),  # fmt: skip
    )
}
SERVICES = ("identity", "catalog", "exchange", "workflow", "evaluation")


def trust_issuer(app: FastAPI, issuer: Issuer) -> None:
    """Make ``app`` verify tokens against ``issuer``'s keys, as the parts' fixtures do."""
    jwks = issuer.jwks()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache("http://jwks.test/jwks.json", client=httpx.AsyncClient(transport=transport)),
    )


def build_app(name: str, database_url: str, issuer: Issuer) -> FastAPI:
    """Migrate ``database_url`` for part ``name`` and build its app (lifespan not started)."""
    part = PARTS[name]
    migrated(part.package, database_url)
    app = part.create(database_url)
    trust_issuer(app, issuer)
    return app


@dataclass
class Running:
    """A started part: its app and an anonymous client of it (pass ``headers=``)."""

    app: FastAPI
    http: httpx.AsyncClient


@asynccontextmanager
async def running(name: str, database_url: str, issuer: Issuer) -> AsyncIterator[Running]:
    """Part ``name`` started in this event loop."""
    app = await asyncio.to_thread(build_app, name, database_url, issuer)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as http:
            yield Running(app, http)

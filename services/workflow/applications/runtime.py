"""What the applications' code needs at run time beside the session: exchange, upload limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

import httpx
from fastapi import Depends, FastAPI, Request

from libs.common.http import service_client
from services.workflow.clients.exchange import ExchangeClient
from services.workflow.clients.tokens import ClientCredentialsToken
from services.workflow.clients.transport import AiohttpPoster, HttpxPoster, JsonPoster
from services.workflow.settings import WorkflowSettings


class Closable(Protocol):
    async def close(self) -> None: ...


@dataclass
class Runtime:
    """Workflow's clients and limits, one per app."""

    exchange: ExchangeClient
    upload_types: list[str]
    upload_max_bytes: int
    uploads_dir: Path
    fetch_retry_interval_s: float
    fetch_retry_batch: int
    fetch_max_attempts: int = 10
    upload_max_bytes_per_application: int = 50 * 1024 * 1024
    upload_min_rate_bytes_s: int = 8 * 1024
    upload_grace_s: float = 10.0


def _secret_reader(settings: WorkflowSettings) -> str | None:
    secret = settings.client_secret.get_secret_value()
    if secret:
        return secret
    path = Path(
        settings.client_secret_file or settings.var_dir / "secrets" / "workflow-client.secret"
    )
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def build_runtime(
    settings: WorkflowSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[Runtime, list[Closable]]:
    """The runtime and the HTTP clients to close at shutdown (``transport``: tests' routing,
    which goes through httpx)."""
    exchange_url = settings.exchange_url or f"{settings.gateway_url}/api/exchange"
    exchange_http: JsonPoster
    if transport is None and settings.exchange_http_client == "aiohttp":
        exchange_http = AiohttpPoster(exchange_url, timeout_s=settings.exchange_timeout_s)
    else:
        exchange_http = HttpxPoster(service_client(
            exchange_url, timeout=settings.exchange_timeout_s, transport=transport))  # fmt: skip
    token_http = service_client(settings.issuer, timeout=settings.exchange_timeout_s,
                                transport=transport)  # fmt: skip
    token = ClientCredentialsToken(
        http=token_http,
        token_url=settings.token_url or f"{settings.issuer}/oauth2/token",
        client_id=settings.client_id,
        secret=lambda: _secret_reader(settings),
    )
    runtime = Runtime(
        exchange=ExchangeClient(http=exchange_http, token=token),
        upload_types=list(settings.upload_content_types),
        upload_max_bytes=settings.upload_max_bytes,
        uploads_dir=Path(settings.uploads_dir or settings.var_dir / "workflow-uploads"),
        fetch_retry_interval_s=settings.fetch_retry_interval_s,
        fetch_retry_batch=settings.fetch_retry_batch,
        fetch_max_attempts=settings.fetch_max_attempts,
        upload_max_bytes_per_application=settings.upload_max_bytes_per_application,
        upload_min_rate_bytes_s=settings.upload_min_rate_bytes_s,
        upload_grace_s=settings.upload_grace_s,
    )
    return runtime, [exchange_http, HttpxPoster(token_http)]


@asynccontextmanager
async def runtime_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Make the runtime (unless a test put one on ``app.state.runtime``); close its clients."""
    clients: list[Closable] = []
    if getattr(app.state, "runtime", None) is None:
        app.state.runtime, clients = build_runtime(app.state.settings)
    try:
        yield
    finally:
        for client in clients:
            await client.close()


async def _runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool (a thread hand-off and
    # back per request, ≈ 100 µs of CPU), where this reads one attribute.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]

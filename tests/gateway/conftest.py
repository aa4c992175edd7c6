"""A gateway under uvicorn in front of small fake parts, each a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.app import create_app
from gateway.settings import SERVICE_PARTS, GatewaySettings
from libs.common.telemetry import configure_tracing
from pingtai.natsserver import free_port
from tests.common.auth.conftest import ISSUER, SigningKey, claims, sign
from tests.conftest import migrated

STARTUP_TIMEOUT_S = 10.0
ECHO_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
GZIPPED = gzip.compress(b"hello, compressed world" * 10)


@dataclass
class Issuer:
    """Signs access tokens; the fake identity part serves its JWKS, as identity does."""

    key: SigningKey = field(default_factory=lambda: SigningKey.rsa("gateway-test-key"))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk()]}

    def token(
        self,
        *,
        sub: str | None = None,
        roles: list[str] | None = None,
        org: str | None = None,
        client_id: str = "tests",
        acr: str = "1",
    ) -> str:
        """A valid access token; ``acr=""`` makes it a client-credentials token."""
        return sign(
            self.key,
            claims(
                sub=sub or uuid.uuid4().hex,
                roles=roles if roles is not None else ["citizen"],
                org=org,
                client_id=client_id,
                acr=acr or None,
                scope="openid",
                # Valid for an hour: some modules make their tokens at import, and the whole
                # suite's collection can be many minutes before their tests run.
                exp=int(time.time()) + 3600,
            ),
        )

    def headers(self, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}


ISSUER_KEYS = Issuer()


@dataclass
class FakePart:
    """A stand-in for a part: echoes what reached it and has a few special endpoints."""

    name: str
    release_stream: asyncio.Event = field(default_factory=asyncio.Event)
    stream_finished: bool = False
    endless_closed: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    hits: int = 0
    # Served at /openapi.json when set (a real part's document).
    openapi: dict[str, Any] | None = None

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/jwks.json", self.jwks),
                Route("/openapi.json", self.document),
                Route("/events", self.events),
                Route("/endless", self.endless),
                Route("/slow", self.slow),
                Route("/hop", self.hop),
                Route("/redirect", self.redirect),
                Route("/gzip", self.gzipped),
                Route("/cookies", self.cookies),
                Route("/obs-text", self.obs_text),
                Route("/{path:path}", self.echo, methods=ECHO_METHODS),
            ]
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(ISSUER_KEYS.jwks())

    async def document(self, request: Request) -> Response:
        if self.openapi is None:
            return JSONResponse({"detail": "no document"}, status_code=404)
        return JSONResponse(self.openapi)

    async def echo(self, request: Request) -> Response:
        self.hits += 1
        size = 0
        digest = hashlib.sha256()
        async for chunk in request.stream():
            size += len(chunk)
            digest.update(chunk)
        return JSONResponse(
            {
                "part": self.name,
                "method": request.method,
                "path": request.url.path,
                "raw_path": request.scope["raw_path"].decode("latin-1"),
                "query": request.scope["query_string"].decode("latin-1"),
                "headers": [[k, v] for k, v in request.headers.items()],
                "body_size": size,
                "body_sha256": digest.hexdigest(),
            },
            headers={"x-upstream": self.name},
        )

    async def events(self, request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            # The rest waits until the test has seen the first event: a buffering proxy would
            # never deliver it, and the test would time out instead of passing by luck.
            await asyncio.wait_for(self.release_stream.wait(), STARTUP_TIMEOUT_S)
            yield b"data: second\n\n"
            self.stream_finished = True

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def endless(self, request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            try:
                for n in range(1000):  # bounded: 1000 ticks of 20 ms
                    yield f"data: tick {n}\n\n".encode()
                    await asyncio.sleep(0.02)
            finally:
                self.endless_closed.set()

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(1.5)
        return JSONResponse({"part": self.name, "slow": True})

    async def hop(self, request: Request) -> Response:
        return Response(
            b"ok",
            headers={
                "connection": "x-private-hop",
                "x-private-hop": "secret",
                "keep-alive": "timeout=5",
                "proxy-authenticate": "Basic",
                "x-end-to-end": "kept",
            },
        )

    async def redirect(self, request: Request) -> Response:
        return Response(status_code=302, headers={"location": "/elsewhere"})

    async def gzipped(self, request: Request) -> Response:
        return Response(GZIPPED, headers={"content-encoding": "gzip", "content-type": "text/plain"})

    async def cookies(self, request: Request) -> Response:
        response = Response(b"ok")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    async def obs_text(self, request: Request) -> Response:
        """A field whose value is not ASCII (Starlette writes it in Latin-1)."""
        return Response(b"ok", headers={"x-name": "caf\u00e9", "x-plain": "kept"})


@asynccontextmanager
async def serve(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port unless given) in this event loop;
    yields its URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, STARTUP_TIMEOUT_S)
        except TimeoutError:
            task.cancel()


@dataclass
class Platform:
    """The gateway and its fake parts, all running."""

    url: str
    parts: dict[str, FakePart]
    down_url: str
    app: FastAPI


StartPlatform = Callable[..., AbstractAsyncContextManager[Platform]]


@pytest.fixture
def platform(tmp_path: Path) -> StartPlatform:
    """Start fake identity, catalog and portal, then a gateway in front; exchange is down.

    Keyword arguments override GatewaySettings fields.
    """

    @asynccontextmanager
    async def start(*, upstreams_all_up: bool = False, **settings: Any) -> AsyncIterator[Platform]:
        names: tuple[str, ...] = ("identity", "catalog", "portal")
        if upstreams_all_up:
            names = (*SERVICE_PARTS, "portal")
        parts = {name: FakePart(name) for name in names}
        async with AsyncExitStack() as stack:
            upstreams: dict[str, str] = {}
            for name, part in parts.items():
                part.url = upstreams[name] = await stack.enter_async_context(serve(part.app()))
            down_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
            upstreams.setdefault("exchange", down_url)
            database_url = settings.pop(
                "database_url", f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
            )
            await asyncio.to_thread(migrated, "gateway", database_url)
            gateway_settings = GatewaySettings(
                database_url=database_url,
                issuer=ISSUER,
                upstreams=upstreams,
                **settings,
            )
            app = create_app(gateway_settings, configure_process=False)
            async with serve(app) as url:
                yield Platform(url=url, parts=parts, down_url=down_url, app=app)

    return start


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client that hands back bytes as sent (no decompression, no redirects)."""
    async with aiohttp.ClientSession(
        auto_decompress=False, timeout=aiohttp.ClientTimeout(total=20)
    ) as session:
        yield session


_EXPORTER: InMemorySpanExporter | None = None


@pytest.fixture
def finished_spans() -> InMemorySpanExporter:
    """Spans finished during the test, from the process's tracer provider."""
    global _EXPORTER
    if _EXPORTER is None:
        provider = configure_tracing("pingtai-gateway-tests")
        _EXPORTER = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    _EXPORTER.clear()
    return _EXPORTER

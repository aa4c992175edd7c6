"""The gateway's dispatcher: forwarded paths skip FastAPI; its own paths reach the FastAPI app."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.proxy import Proxy
from gateway.routes import GATEWAY, Route, RouteTable
from libs.common.errors import problem_response
from libs.common.middleware import RequestContextMiddleware
from libs.common.settings import PartSettings

tracer = trace.get_tracer("pingtai.gateway")

EdgeFactory = Callable[[ASGIApp], ASGIApp]

_TRACE_FIELDS = frozenset({b"traceparent", b"tracestate", b"baggage"})


class GatewayDispatcher:
    """The outermost layer of the gateway app: one route-table lookup per request.

    The gateway's own paths (and lifespan, and anything not HTTP) go on to the FastAPI app with
    its full middleware stack; a forwarded path goes to ``forward``, which carries the same
    RequestContextMiddleware but not FastAPI's routing, exception layers or per-message
    instrumentation: the hot path stays short.
    """

    def __init__(self, app: ASGIApp, *, table: RouteTable, forward: ASGIApp) -> None:
        self.app = app
        self.table = table
        self.forward = forward

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.table.match(scope["path"])
        if route.target == GATEWAY:
            await self.app(scope, receive, send)
            return
        # The route labels the request in metrics and the access log (RequestContextMiddleware
        # reads scope["route"]), as a FastAPI route would.
        scope["route"] = route
        await self.forward(scope, receive, send)


class TracedForwarder:
    """Open the gateway's server span (continuing the caller's trace), then forward or 404."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: Route = scope["route"]
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_FIELDS
        }
        method: str = scope["method"]
        with tracer.start_as_current_span(
            f"{method} {route.path}",
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route.path,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
                "pingtai.upstream": route.target or "",
            },
        ):
            if route.target is None:
                response = problem_response(
                    404, code="not-found", detail=f"No API is published at {scope['path']}."
                )
                trace.get_current_span().set_attribute("http.response.status_code", 404)
                await response(scope, receive, send)
                return
            await self.proxy.forward(route, scope, receive, send)


class RouteCors:
    """CORS per route: its own origins, else the gateway's (``PINGTAI_GATEWAY_CORS_ORIGINS``).

    Preflight requests are answered here, before any credential is asked for.
    """

    def __init__(self, app: ASGIApp, *, default_origins: Sequence[str]) -> None:
        self.app = app
        self.default_origins = tuple(default_origins)
        self._by_origins: dict[tuple[str, ...], ASGIApp] = {}

    def _for(self, origins: tuple[str, ...]) -> ASGIApp:
        wrapped = self._by_origins.get(origins)
        if wrapped is None:
            wrapped = CORSMiddleware(
                self.app, allow_origins=origins, allow_methods=["*"], allow_headers=["*"]
            )
            self._by_origins[origins] = wrapped
        return wrapped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: Route = scope["route"]
        origins = route.policy.cors_origins
        if origins is None:
            origins = self.default_origins
        if not origins:
            await self.app(scope, receive, send)
            return
        await self._for(origins)(scope, receive, send)


def forwarding_app(proxy: Proxy, settings: PartSettings, *, edge: EdgeFactory) -> ASGIApp:
    """The forwarded path: the same request middleware as the gateway's own endpoints, then CORS
    of the route, the edge's checks, the server span and the proxy."""
    app: ASGIApp = edge(TracedForwarder(proxy))
    app = RouteCors(app, default_origins=settings.cors_origins)
    return RequestContextMiddleware(
        app, part=settings.part, max_body_bytes=settings.max_body_bytes, forwarded_prefix=False
    )


def dispatch_first(app: FastAPI, *, table: RouteTable, forward: ASGIApp) -> None:
    """Put ``GatewayDispatcher`` outside ``app``'s middleware stack.

    The same hook OpenTelemetry's FastAPI instrumentation uses: the stack is built on the first
    request, so wrapping its builder keeps ``app`` a FastAPI app (state, lifespan, routes).
    """
    build_stack = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return GatewayDispatcher(build_stack(), table=table, forward=forward)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]

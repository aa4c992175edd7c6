"""The gateway's dispatcher: forwarded paths skip FastAPI; its own paths reach the FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.routes import GATEWAY, RouteTable


class GatewayDispatcher:
    """The outermost layer of the gateway app: one route-table lookup per request.

    The gateway's own paths (and lifespan, and anything not HTTP) go on to the FastAPI app with
    its full middleware stack; a forwarded path goes to ``forward`` (the ``Forwarder``), which
    does what RequestContextMiddleware does there in one layer, without FastAPI's routing,
    exception layers or per-message instrumentation: the hot path stays short.
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
        # The route labels the request in metrics and the access log, as a FastAPI route would.
        scope["route"] = route
        await self.forward(scope, receive, send)


def dispatch_first(app: FastAPI, *, table: RouteTable, forward: ASGIApp) -> None:
    """Put ``GatewayDispatcher`` outside ``app``'s middleware stack.

    The same hook OpenTelemetry's FastAPI instrumentation uses: the stack is built on the first
    request, so wrapping its builder keeps ``app`` a FastAPI app (state, lifespan, routes).
    """
    build_stack = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return GatewayDispatcher(build_stack(), table=table, forward=forward)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]

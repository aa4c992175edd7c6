"""The gateway's dispatcher: proxied paths skip FastAPI's routing; its own paths reach the app."""

from __future__ import annotations

from opentelemetry import trace
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.proxy import Proxy
from gateway.routes import GATEWAY, RouteTable
from libs.common.errors import problem_response


class GatewayDispatcher:
    """An ASGI middleware placed innermost, just inside RequestContextMiddleware.

    Every request still gets the common middleware (request id, body limit, access log,
    metrics, the OpenTelemetry server span); then a forwarded path goes straight to the proxy
    and only the gateway's own paths go on to FastAPI's router.
    """

    def __init__(self, app: ASGIApp, *, table: RouteTable, proxy: Proxy) -> None:
        self.app = app
        self.table = table
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.table.match(scope["path"])
        if route.target == GATEWAY:
            await self.app(scope, receive, send)
            return
        # The route labels this request in metrics, the access log and the server span.
        scope["route"] = route
        span = trace.get_current_span()
        if span.is_recording():
            span.update_name(f"{scope['method']} {route.path}")
            span.set_attribute("http.route", route.path)
        if route.target is None:
            response = problem_response(
                404,
                code="not-found",
                detail=f"No API is published at {scope['path']}.",
            )
            await response(scope, receive, send)
            return
        await self.proxy.forward(route, scope, receive, send)

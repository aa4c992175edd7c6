"""The gateway part's app."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from gateway.dispatcher import GatewayDispatcher
from gateway.proxy import Proxy, UpstreamPool
from gateway.router import router
from gateway.routes import RouteTable, default_routes
from gateway.settings import GatewaySettings
from libs.common.app import create_service_app


def create_app(
    settings: GatewaySettings | None = None, *, configure_process: bool = True
) -> FastAPI:
    """Build the gateway app from ``settings`` (read from the environment when omitted)."""
    settings = settings or GatewaySettings()
    table = RouteTable(default_routes())
    pool = UpstreamPool(settings, sorted(table.targets))
    app = create_service_app(
        settings,
        title="Pingtai Gateway",
        description=(
            "Gateway: the one public entrance; routes /api/<part>/... to each "
            "service and / to the portal."
        ),
        routers=[router],
        lifespans=[pool.lifespan],
        readiness_checks=pool.readiness_checks(),
        configure_process=configure_process,
    )
    # Innermost of the user middleware, so RequestContextMiddleware (and CORS, and the
    # OpenTelemetry span outside them) wrap forwarded requests too, but FastAPI's exception
    # middleware and router do not: add_middleware() would put it outermost instead.
    app.user_middleware.append(Middleware(GatewayDispatcher, table=table, proxy=Proxy(pool)))
    app.state.routes = table
    app.state.upstreams = pool
    return app

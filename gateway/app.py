"""The gateway part's app."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.dispatcher import dispatch_first, forwarding_app
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
        behind_gateway=False,
        readiness_checks=pool.readiness_checks(),
        configure_process=configure_process,
    )
    dispatch_first(app, table=table, forward=forwarding_app(Proxy(pool), settings))
    app.state.routes = table
    app.state.upstreams = pool
    return app

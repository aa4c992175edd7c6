"""The gateway part's app."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.router import router
from gateway.settings import GatewaySettings
from libs.common.app import create_service_app


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Build the gateway app from ``settings`` (read from the environment when omitted)."""
    settings = settings or GatewaySettings()
    return create_service_app(
        settings,
        title="Pingtai Gateway",
        description=(
            "Gateway: the one public entrance; routes /api/<part>/... to each "
            "service and / to the portal."
        ),
        routers=[router],
    )

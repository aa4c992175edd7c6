"""The portal part's app."""

from __future__ import annotations

from fastapi import FastAPI

from libs.common.app import create_service_app
from portal.pages import router as pages_router
from portal.router import router
from portal.settings import PortalSettings


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    """Build the portal app from ``settings`` (read from the environment when omitted)."""
    settings = settings or PortalSettings()
    return create_service_app(
        settings,
        title="Pingtai Portal",
        description=(
            "Portal: the web portal for citizens, enterprise agents, officers, "
            "department admins and evaluators."
        ),
        routers=[router, pages_router],
    )

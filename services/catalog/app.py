"""The catalog part's app."""

from __future__ import annotations

from fastapi import FastAPI

from libs.common.app import create_service_app
from libs.common.events import EventBus
from services.catalog.router import router
from services.catalog.settings import CatalogSettings


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    """Build the catalog app from ``settings`` (read from the environment when omitted)."""
    settings = settings or CatalogSettings()
    return create_service_app(
        settings,
        title="Pingtai Catalog",
        description=(
            "Catalog: service items (政务服务事项), one-thing bundles (一件事) and the "
            "data-resource catalogue (政务信息资源目录)."
        ),
        routers=[router],
        events=EventBus(settings),
    )

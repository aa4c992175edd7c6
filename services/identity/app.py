"""The identity part's app."""

from __future__ import annotations

from fastapi import FastAPI

from libs.common.app import create_service_app
from libs.common.events import EventBus
from services.identity.notifications import CodeSender
from services.identity.oauth import wiring as oauth_wiring
from services.identity.protection import IdentifierProtector
from services.identity.router import router
from services.identity.settings import IdentitySettings


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    """Build the identity app from ``settings`` (read from the environment when omitted)."""
    settings = settings or IdentitySettings()
    app = create_service_app(
        settings,
        title="Pingtai Identity",
        description=(
            "Identity (统一身份认证): people, organisations, roles and credentials; the "
            "OpenID Connect provider."
        ),
        # The provider's routes first: they take most requests, and routes match in order.
        routers=[*oauth_wiring.ROUTERS, router],
        lifespans=[oauth_wiring.lifespan],
        events=EventBus(settings),
    )
    app.state.protector = IdentifierProtector(settings.secret_key)
    app.state.code_sender = CodeSender(development=settings.env == "development")
    return app

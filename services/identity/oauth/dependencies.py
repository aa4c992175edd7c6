"""What the provider's endpoints take from the app: its settings and the issuer (key ring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from services.identity.oauth.tokens.service import Issuer

if TYPE_CHECKING:
    from services.identity.settings import IdentitySettings


# async: FastAPI runs a plain function in a worker thread, a costly trip for an attribute.
async def _issuer(request: Request) -> Issuer:
    issuer: Issuer = request.app.state.oauth_issuer
    return issuer


async def _settings(request: Request) -> IdentitySettings:
    settings: IdentitySettings = request.app.state.settings
    return settings


IssuerDep = Annotated[Issuer, Depends(_issuer)]
SettingsDep = Annotated["IdentitySettings", Depends(_settings)]


def client_address(request: Request) -> str:
    """The caller's address (the gateway forwards the client's; uvicorn believes it)."""
    return request.client.host if request.client is not None else "unknown"

"""What the provider's endpoints take from the app: its settings and the issuer (key ring)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import Database
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


def _touched(session: AsyncSession) -> bool:
    return session.in_transaction() or bool(session.identity_map) or bool(session.new)


@asynccontextmanager
async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """What ``SessionDep`` gives, for the token endpoint's hot path, without FastAPI's
    dependency machinery (a fifth of a client-credentials grant's cost): commit when the block
    ends, roll back if it raises; a session the block never used costs nothing more."""
    database: Database = request.app.state.database
    session = database.sessionmaker()
    try:
        yield session
    except BaseException:
        if _touched(session):
            await session.rollback()
        raise
    else:
        if _touched(session):
            await session.commit()
    finally:
        if _touched(session):
            await session.close()


IssuerDep = Annotated[Issuer, Depends(_issuer)]
SettingsDep = Annotated["IdentitySettings", Depends(_settings)]


def client_address(request: Request) -> str:
    """The caller's address (the gateway forwards the client's; uvicorn believes it)."""
    return request.client.host if request.client is not None else "unknown"

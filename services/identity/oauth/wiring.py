"""The provider's part of the identity app: its routers and its lifespan (keys, bootstrap
clients, pruning)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import APIRouter, FastAPI
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from libs.common.auth import close_token_verifier
from libs.common.database import Database
from services.identity.ids import utcnow
from services.identity.oauth import discovery
from services.identity.oauth.authorize.router import router as authorize_router
from services.identity.oauth.clients import cache as clients_cache
from services.identity.oauth.clients import service as clients_service
from services.identity.oauth.clients.router import router as clients_router
from services.identity.oauth.keys.service import KeyRing
from services.identity.oauth.logout.router import router as logout_router
from services.identity.oauth.signin import service as signin_service
from services.identity.oauth.tokens import repository as tokens_repository
from services.identity.oauth.tokens.router import router as tokens_router
from services.identity.oauth.tokens.service import Issuer
from services.identity.settings import IdentitySettings

log = structlog.get_logger("pingtai.identity.oauth")

PRUNE_EVERY_S = 600.0

# The token endpoint first: routes are matched in order, and it is the busiest.
ROUTERS: tuple[APIRouter, ...] = (
    tokens_router,
    discovery.router,
    authorize_router,
    logout_router,
    clients_router,
)


async def _bootstrap_clients(database: Database, settings: IdentitySettings) -> None:
    async with database.sessionmaker() as session:
        ensured = await clients_service.ensure_bootstrap_clients(
            session=session,
            settings=settings,
            secret_key=settings.secret_key,
            gateway_url=settings.gateway_url,
            env=settings.env,
        )
        await session.commit()
    log.info("bootstrap_clients_ready", clients=ensured)


async def prune_once(database: Database, settings: IdentitySettings) -> None:
    """Forget expired sessions, codes, refresh tokens, revocations and old failures."""
    now = utcnow()
    async with database.sessionmaker() as session:
        await signin_service.prune(session=session, settings=settings)
        await tokens_repository.prune(
            session,
            now=now,
            codes_before=now - timedelta(seconds=max(3600, settings.oauth_access_token_ttl_s)),
        )
        await session.commit()


async def _prune_forever(database: Database, settings: IdentitySettings) -> None:
    while True:
        await asyncio.sleep(PRUNE_EVERY_S)
        try:
            await prune_once(database, settings)
        except SQLAlchemyError as exc:
            log.warning("oauth_prune_failed", error=str(exc))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load (or create) the signing keys, ensure the bootstrap clients, prune in the background."""
    settings: IdentitySettings = app.state.settings
    database: Database = app.state.database
    clients_cache.configure(url=str(database.engine.url), ttl_s=settings.oauth_client_cache_ttl_s)
    ring = KeyRing(database.sessionmaker, settings=settings, protector=app.state.protector)
    app.state.oauth_issuer = Issuer(
        ring=ring, settings=settings, issuer=settings.issuer, audience=settings.audience
    )
    try:
        await ring.start()
        await _bootstrap_clients(database, settings)
    except IntegrityError:
        # Another replica created the same keys or clients a moment ago.
        log.info("oauth_bootstrap_raced")
        await ring.refresh(force=True)
    except SQLAlchemyError as exc:
        # An unmigrated database must not stop the process: /readyz tells, keys come lazily.
        log.error("oauth_bootstrap_failed", error=str(exc))
    pruning = asyncio.create_task(_prune_forever(database, settings))
    try:
        yield
    finally:
        pruning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruning
        await close_token_verifier(app)

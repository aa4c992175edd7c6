"""The portal part's app: pages, sign-in, static assets, security headers, languages."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.app import create_service_app
from libs.common.auth.dependencies import token_verifier
from libs.common.database import Database
from portal import i18n
from portal.auth.oidc import OidcClient
from portal.auth.router import router as auth_router
from portal.pages import admin, applications, catalogue, evaluation, home, officer, privacy
from portal.platform import ApiProblem, Platform, visitor_address
from portal.sessions import repository as sessions_repository
from portal.sessions.sealing import TokenSealer
from portal.sessions.service import SessionKeeper
from portal.settings import PortalSettings
from portal.web import (
    Directory,
    PageNotAllowed,
    SignInRequired,
    now_utc,
    render,
    see_other,
    sign_in_url,
    templates,
)

STATIC_DIR = Path(__file__).parent / "static"
log = structlog.get_logger("pingtai.portal")


def content_security_policy() -> str:
    """Scripts, styles, images and connections only from the portal itself; no inline code."""
    return "; ".join([
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
        "font-src 'self'", "connect-src 'self'", "form-action 'self'", "frame-ancestors 'none'",
        "base-uri 'none'", "manifest-src 'self'",
    ])  # fmt: skip


class PortalHeaders:
    """Pure ASGI middleware: the request's language, and security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.csp = content_security_policy().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        language = i18n.pick_language(_cookie(scope, i18n.LANGUAGE_COOKIE))
        token = i18n.current_language.set(language)
        client = scope.get("client")
        address = visitor_address.set(str(client[0]) if client else None)
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", self.csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                ]
                if not static:
                    headers += [(b"cache-control", b"private, no-store"), (b"vary", b"Cookie")]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            i18n.current_language.reset(token)
            visitor_address.reset(address)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return str(v)
    return None


class CachedStatic(StaticFiles):
    """Static assets: cacheable for a year (their URLs carry a hash of their content)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


def static_versions() -> dict[str, str]:
    """Asset path -> the URL with a content hash."""
    versions = {}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            relative = path.relative_to(STATIC_DIR).as_posix()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            versions[relative] = f"/static/{relative}?v={digest}"
    return versions


async def _purge_expired(database: Database, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            async with database.sessionmaker() as session, session.begin():
                await sessions_repository.delete_expired(session, now_utc())
        except Exception:  # keep purging after a database hiccup
            log.exception("session_purge_failed")


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    """Build the portal app from ``settings`` (read from the environment when omitted)."""
    settings = settings or PortalSettings()

    @asynccontextmanager
    async def portal_lifespan(app: FastAPI) -> AsyncIterator[None]:
        purge = asyncio.create_task(_purge_expired(app.state.database, 300.0))
        try:
            yield
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
            await app.state.platform.aclose()

    app = create_service_app(
        settings,
        title="Pingtai Portal",
        description="The web portal for citizens, enterprise agents, officers, department admins "
        "and evaluators.",
        routers=[
            auth_router, home.router, catalogue.router, applications.router, privacy.router,
            officer.router, admin.router, evaluation.router,
        ],
        lifespans=[portal_lifespan],
    )  # fmt: skip
    app.state.platform = Platform(
        settings.api_url,
        timeout=settings.api_timeout_s,
        client_credentials=(settings.client_id, settings.client_secret),
    )
    verifier = token_verifier(app)
    app.state.sessions = SessionKeeper(
        settings=settings,
        oidc=OidcClient(settings, app.state.platform.http, verifier.jwks),
        verifier=verifier,
        sealer=TokenSealer(settings.secret_key),
    )
    app.state.directory = Directory(settings.directory_ttl_s)
    versions = static_versions()
    templates.env.globals["static"] = lambda path: versions.get(path, f"/static/{path}")
    app.mount("/static", CachedStatic(directory=STATIC_DIR), name="static")
    _install_page_errors(app)
    app.add_middleware(PortalHeaders)
    return app


def _install_page_errors(app: FastAPI) -> None:
    """Pages answer HTML: a sign-in redirect, a refusal page, the service's problem shown."""

    async def on_sign_in_required(request: Request, exc: Exception) -> Response:
        return see_other(sign_in_url(request))

    async def on_not_allowed(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", {"status": 403}, status=403)

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        if exc.status == 401:
            return see_other(sign_in_url(request))
        status = exc.status if 400 <= exc.status < 600 else 502
        return render(request, "error.html", {"status": status, "problem": exc}, status=status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return render(request, "error.html", {"status": exc.status_code}, status=exc.status_code)

    app.add_exception_handler(SignInRequired, on_sign_in_required)
    app.add_exception_handler(PageNotAllowed, on_not_allowed)
    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_error)

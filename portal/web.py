"""What every page needs: templates, the visitor's session, CSRF, rendering and redirects."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import SessionDep
from portal import i18n
from portal.platform import ApiProblem, Platform
from portal.sessions.models import PortalSession
from portal.sessions.service import SessionKeeper
from portal.settings import PortalSettings

TEMPLATES_DIR = Path(__file__).parent / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n._, i18n.ngettext, newstyle=True
    )
    env.globals["pick"] = i18n.pick
    env.globals["any_role"] = lambda roles, *names: bool(set(roles) & set(names))
    env.filters["when"] = _when
    env.filters["yuan"] = _yuan
    env.filters["number"] = _number
    env.filters["access_outcome"] = access_outcome
    return env


def access_outcome(outcome: str) -> str:
    """A ledger entry's outcome as "who used my data" shows it; an unknown one as it is."""
    labels = {
        "granted": i18n._("Read"),
        "read": i18n._("Read"),
        "refused": i18n._("Refused"),
        # The read was allowed, but the department's system did not deliver (exchange "failed").
        "failed": i18n._("Not delivered by the source"),
    }
    return labels.get(outcome, outcome)


def _when(value: str | None) -> str:
    """An API timestamp as local (Asia/Shanghai) date and minute."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


def _number(value: object) -> str:
    """A number as a form shows it: 7.5, 10 (not 10.0); anything else as it is."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _yuan(fen: int | None) -> str:
    return f"{(fen or 0) / 100:.2f}"


templates = Jinja2Templates(env=_environment())


class SignInRequired(Exception):
    """The page needs a signed-in person; the handler sends the browser to sign in."""


class PageNotAllowed(Exception):
    """The signed-in person's roles do not open this page."""


def keeper(request: Request) -> SessionKeeper:
    """The app's session keeper."""
    found: SessionKeeper = request.app.state.sessions
    return found


def platform(request: Request) -> Platform:
    """The app's client of the platform's APIs."""
    found: Platform = request.app.state.platform
    return found


def settings_of(request: Request) -> PortalSettings:
    """The portal's settings."""
    found: PortalSettings = request.app.state.settings
    return found


@dataclass(frozen=True)
class Shown:
    """What pages show of the signed-in person: a copy, still readable after a rollback."""

    name: str
    roles: frozenset[str]
    csrf_token: str


async def _visitor(request: Request, db: SessionDep) -> PortalSession | None:
    cookie = request.cookies.get(settings_of(request).session_cookie)
    row = await keeper(request).load(db, cookie)
    if row is not None:
        request.state.shown = Shown(row.name, frozenset(row.roles), row.csrf_token)
    return row


Visitor = Annotated[PortalSession | None, Depends(_visitor)]


async def _signed_in(visitor: Visitor) -> PortalSession:
    if visitor is None:
        raise SignInRequired
    return visitor


SignedIn = Annotated[PortalSession, Depends(_signed_in)]


def require_roles(*roles: str) -> Any:
    """A dependency: the signed-in person holds one of ``roles``."""

    async def holds(visitor: SignedIn) -> PortalSession:
        if not set(roles) & set(visitor.roles):
            raise PageNotAllowed
        return visitor

    return Depends(holds)


async def _checked_csrf(
    visitor: SignedIn, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> PortalSession:
    if not secrets.compare_digest(csrf_token.encode(), visitor.csrf_token.encode()):
        raise ApiProblem(403, "CSRF", "The form's token does not match this session.")
    return visitor


CsrfChecked = Annotated[PortalSession, Depends(_checked_csrf)]


async def token_of(request: Request, db: AsyncSession, visitor: PortalSession) -> str:
    """The visitor's live access token, or SignInRequired when identity refuses to renew it."""
    token = await keeper(request).access_token(db, visitor)
    if token is None:
        raise SignInRequired
    return token


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """The page ``template`` in the visitor's language."""
    visitor: Shown | None = getattr(request.state, "shown", None)
    language = i18n.current_language.get()
    full = {
        "visitor": visitor,
        "roles": visitor.roles if visitor else frozenset(),
        "csrf_token": visitor.csrf_token if visitor else "",
        "lang": language,
        "html_lang": i18n.HTML_LANG[language],
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "fragment": request.headers.get("HX-Request") == "true",
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, full, status_code=status)


def see_other(url: str) -> RedirectResponse:
    """Post/redirect/get: a 303 to ``url``."""
    return RedirectResponse(url, status_code=303)


def set_cookie(
    response: Response,
    settings: PortalSettings,
    name: str,
    value: str,
    max_age: int | None,
    path: str = "/",
) -> None:
    """Set a cookie the way all of the portal's are: HttpOnly, SameSite=Lax, Secure per settings."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=bool(settings.cookie_secure),
        httponly=True, samesite="lax",
    )  # fmt: skip


def safe_return_to(value: str | None) -> str:
    """A local path to come back to (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def sign_in_url(request: Request) -> str:
    """Where to send someone who must sign in to see this page."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/auth/login?next={quote(here, safe='')}"


class Directory:
    """Department names from identity, kept in memory: identity answers only signed-in callers,
    so the list is fetched with the first signed-in visitor's token and kept for a while."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._names: dict[str, dict[str, Any]] = {}
        self._fetched_at = 0.0

    @property
    def departments(self) -> dict[str, dict[str, Any]]:
        """id -> organisation, as identity lists them."""
        return self._names

    def name(self, org_id: str | None) -> str:
        """The department's name in the current language, or a short form of its id."""
        if not org_id:
            return i18n._("Platform")
        org = self._names.get(org_id)
        return i18n.pick(org.get("name"), org.get("name_en")) if org else org_id[:8]

    async def refresh(self, api: Platform, token: str | None) -> None:
        """Fetch the departments again when the copy is older than the TTL (needs a token)."""
        if token is None or (self._names and time.monotonic() - self._fetched_at < self.ttl_s):
            return
        try:
            page = await api.get_json(
                "/api/identity/v1/organisations",
                token=token,
                params={"kind": "department", "limit": 200},
            )
        except ApiProblem:
            return
        self._names = {org["id"]: org for org in page.get("items", [])}
        self._fetched_at = time.monotonic()


def directory(request: Request) -> Directory:
    """The app's department directory."""
    found: Directory = request.app.state.directory
    return found


def now_utc() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def no_content() -> Response:
    """204."""
    return Response(status_code=204)

"""The identity app served by uvicorn on a free port, on a migrated database, with people,
organisations and clients; helpers that drive a browser-like sign-in."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from html import unescape
from typing import Any

import httpx
import pytest
import uvicorn
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI

from libs.common.database import Database
from pingtai.natsserver import free_port
from services.identity import identifiers
from services.identity.app import create_app
from services.identity.oauth.clients import service as clients_service
from services.identity.oauth.clients.schemas import ClientCreate
from services.identity.organisations.models import Membership, Organisation
from services.identity.passwords import hash_password
from services.identity.people.models import User
from services.identity.protection import IdentifierProtector
from services.identity.settings import IdentitySettings
from tests.conftest import migrated

SECRET = "oauth-tests-secret-0123456789abcdef-0123456789"
PASSWORD = "Correct-horse-42"
REDIRECT_URI = "https://app.example.cn/callback"
SIGNED_OUT_URI = "https://app.example.cn/signed-out"
ALICE_RESIDENT_ID = identifiers.make_resident_id("330106", date(1990, 3, 7), 123)


@dataclass
class Person:
    id: str
    phone: str
    email: str
    name: str


@dataclass
class Provider:
    """The running provider and what was made in it."""

    app: FastAPI
    base_url: str
    settings: IdentitySettings
    database: Database
    people: dict[str, Person] = field(default_factory=dict)
    orgs: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30.0, **kwargs)

    async def outbox_types(self) -> list[str]:
        from sqlalchemy import text

        async with self.database.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT subject FROM pingtai_event_outbox ORDER BY created_at")
            )
            return [row[0] for row in rows]


def settings_for(database_url: str, port: int, **overrides: Any) -> IdentitySettings:
    base = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = {
        "database_url": database_url,
        "gateway_url": base,
        "issuer": base,
        "secret_key": SECRET,
        "nats_url": None,
        "port": port,
        "oauth_key_activation_delay_s": 0,
        "oauth_key_check_interval_s": 0,
        "oauth_ip_max_failures": 30,
        "auth_jwks_refetch_floor_s": 0,
        **overrides,
    }
    return IdentitySettings(**values)


async def _seed(provider: Provider) -> None:
    protector = IdentifierProtector(SECRET)
    async with provider.database.sessionmaker() as session:
        for key, name, en in (
            ("amr", "浙江省市场监督管理局", "Zhejiang Market Regulation"),
            ("hrss", "浙江省人力资源和社会保障厅", "Zhejiang Human Resources"),
        ):
            org = Organisation(
                kind="department",
                name=name,
                name_en=en,
                region_code="330000",
                credit_code_hash=protector.lookup_hash(f"code-{key}"),
                credit_code_encrypted=protector.encrypt(f"code-{key}", "organisations.credit_code"),
                credit_code_masked="11330000********",
            )
            session.add(org)
            await session.flush()
            provider.orgs[key] = org.id
        password_hash = await hash_password(PASSWORD)
        people = {
            # A citizen; signs in by phone, e-mail or resident id number.
            "alice": ("13800000001", "alice@example.cn", "王丽", [(None, "citizen")]),
            # An officer of two departments: chooses whom to act for.
            "bob": (
                "13800000002",
                "bob@example.cn",
                "李波",
                [
                    (None, "citizen"),
                    (provider.orgs["amr"], "officer"),
                    (provider.orgs["hrss"], "officer"),
                ],
            ),
            # An officer of one department: acts for it without a choice.
            "carol": (
                "13800000003",
                "carol@example.cn",
                "陈可",
                [(None, "citizen"), (provider.orgs["amr"], "dept_admin")],
            ),
        }
        for key, (phone, email, name, roles) in people.items():
            user = User(
                name=name,
                phone=phone,
                email=email,
                password_hash=password_hash,
                acr=2 if key == "alice" else 1,
            )
            if key == "alice":
                user.resident_id_hash = protector.lookup_hash(ALICE_RESIDENT_ID)
                user.resident_id_masked = identifiers.mask_resident_id(ALICE_RESIDENT_ID)
            session.add(user)
            await session.flush()
            for org_id, role in roles:
                session.add(Membership(user_id=user.id, org_id=org_id, role=role))
            provider.people[key] = Person(id=user.id, phone=phone, email=email, name=name)
        registrations = {
            "webapp": ClientCreate(
                client_id="webapp",
                name="办事应用 Web app",
                grant_types=["authorization_code", "refresh_token"],
                scopes=["openid", "profile", "phone", "email", "pingtai"],
                redirect_uris=[REDIRECT_URI],
                post_logout_redirect_uris=[SIGNED_OUT_URI],
            ),
            "mobile": ClientCreate(
                client_id="mobile",
                name="浙里办 Mobile",
                client_type="public",
                grant_types=["authorization_code", "refresh_token"],
                scopes=["openid", "profile"],
                redirect_uris=["cn.gov.zj.app:/callback"],
            ),
            "amr-system": ClientCreate(
                client_id="amr-system",
                name="市场监管 证照系统",
                grant_types=["client_credentials"],
                scopes=["exchange:read", "workflow:write"],
                org_id=provider.orgs["amr"],
                roles=["officer"],
            ),
            "resource-server": ClientCreate(
                client_id="resource-server",
                name="An API that introspects",
                grant_types=["client_credentials"],
                token_endpoint_auth_method="client_secret_post",
            ),
        }
        for key, registration in registrations.items():
            _, secret = await clients_service.register_client(
                session=session, secret_key=SECRET, registration=registration
            )
            if secret is not None:
                provider.secrets[key] = secret
        await session.commit()


@contextlib.asynccontextmanager
async def running_provider(database_url: str, **overrides: Any) -> AsyncIterator[Provider]:
    """Migrate, start uvicorn on a free port, seed; stop everything after."""
    await asyncio.to_thread(migrated, "services.identity", database_url)
    port = free_port()
    settings = settings_for(database_url, port, **overrides)
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    database = Database(database_url)
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        provider = Provider(
            app=app, base_url=f"http://127.0.0.1:{port}", settings=settings, database=database
        )
        provider.secrets["platform-admin"] = "pingtai-dev-admin-secret"
        await _seed(provider)
        yield provider
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)
        await database.dispose()


@pytest.fixture
async def provider(database_url: str) -> AsyncIterator[Provider]:
    async with running_provider(database_url) as running:
        yield running


_INPUT = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')
_ACTION = re.compile(r'<form method="post" action="(?P<action>[^"]+)"')


def form_of(html: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the page's form, as a browser would submit them."""
    action = _ACTION.search(html)
    assert action is not None, html
    fields = {m["name"]: unescape(m["value"]) for m in _INPUT.finditer(html)}
    assert {"auth_request", "csrf_token"} <= fields.keys(), html
    return unescape(action["action"]), fields


async def sign_in(
    browser: httpx.AsyncClient, authorize_url: str, *, username: str, password: str = PASSWORD
) -> httpx.Response:
    """Open the authorization URL, fill in the sign-in form, submit it; the response to it."""
    page = await browse(browser, "GET", authorize_url)
    assert page.status_code == 200, page.text
    action, fields = form_of(page.text)
    return await browse(
        browser,
        "POST",
        str(page.url.join(action)),
        data={**fields, "username": username, "password": password},
    )


async def browse(
    browser: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """A page request as a browser makes it: authlib's client sends no token with it."""
    if isinstance(browser, AsyncOAuth2Client):
        kwargs["withhold_token"] = True
    return await browser.request(method, url, **kwargs)

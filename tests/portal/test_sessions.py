"""Sessions on SQLite and PostgreSQL: the sign-in's state and single use, tokens sealed at rest,
idle and absolute expiry, one refresh at a time, sign-out here and everywhere, CSRF on forms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select, update

from libs.common.auth.principal import Principal, Role
from libs.common.database import Database
from portal.auth.oidc import OidcClient, SignInFailed, TokenSet
from portal.sessions.models import PendingSignIn, PortalSession
from portal.sessions.sealing import TokenSealer
from portal.sessions.service import SessionKeeper
from portal.settings import PortalSettings
from tests.conftest import migrated


@dataclass
class FakeIdentity:
    """identity's token, revoke and userinfo endpoints, as far as the portal sees them."""

    issued: int = 0
    refreshed: int = 0
    revoked: list[str] = field(default_factory=list)
    refuse_refresh: bool = False
    expires_in: int = 300

    def _tokens(self) -> TokenSet:
        self.issued += 1
        return TokenSet(
            f"access-{self.issued}", f"refresh-{self.issued}", self.expires_in, f"id-{self.issued}"
        )

    def authorization_url(self, **params: Any) -> str:
        return f"https://idp.example/authorize?state={params['state']}"

    async def exchange_code(self, *, code: str, verifier: str) -> TokenSet:
        assert code == "good-code" and len(verifier) >= 43
        return self._tokens()

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        return {"sub": "person-1", "nonce": nonce}

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        return {"name": "张伟"}

    async def refresh(self, refresh_token: str) -> TokenSet:
        await asyncio.sleep(0.05)  # long enough for a second caller to arrive meanwhile
        if self.refuse_refresh:
            raise SignInFailed("invalid_grant")
        self.refreshed += 1
        return self._tokens()

    async def revoke(self, refresh_token: str) -> None:
        self.revoked.append(refresh_token)

    def end_session_url(self, *, id_token_hint: str) -> str:
        return f"https://idp.example/logout?hint={id_token_hint}"


class FakeVerifier:
    async def verify(self, token: str) -> Principal:
        return Principal(
            sub="person-1", client_id="portal", org=None, roles=frozenset({Role.CITIZEN}), acr=3,
            scopes=frozenset({"openid"}), jti=token, expires_at=datetime.now(UTC),
        )  # fmt: skip


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    await asyncio.to_thread(migrated, "portal", database_url)
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
def identity() -> FakeIdentity:
    return FakeIdentity()


@pytest.fixture
def keeper(identity: FakeIdentity) -> SessionKeeper:
    settings = PortalSettings(session_idle_s=600, session_ttl_s=3600)
    return SessionKeeper(
        settings=settings, oidc=identity, verifier=FakeVerifier(),  # type: ignore[arg-type]
        sealer=TokenSealer("test-secret"),
    )  # fmt: skip


async def _signed_in(keeper: SessionKeeper, database: Database) -> tuple[PortalSession, str]:
    async with database.sessionmaker() as db, db.begin():
        browser, url = await keeper.start_sign_in(db, return_to="/me", prompt=None)
    state = url.split("state=")[1]
    async with database.sessionmaker() as db, db.begin():
        row, cookie, back = await keeper.finish_sign_in(
            db, cookie_value=browser, state=state, code="good-code"
        )
    assert back == "/me"
    return row, cookie


async def test_sign_in_makes_a_session_whose_tokens_are_sealed(
    keeper: SessionKeeper, database: Database
) -> None:
    row, cookie = await _signed_in(keeper, database)
    async with database.sessionmaker() as db:
        stored = (await db.scalars(select(PortalSession))).one()
        assert stored.id != cookie and len(stored.id) == 64  # only the cookie's hash is kept
        assert b"access-1" not in stored.access_token and b"refresh-1" not in stored.refresh_token
        assert (stored.name, stored.roles, stored.acr) == ("张伟", ["citizen"], 3)
        assert (await db.scalars(select(PendingSignIn))).all() == []  # single use
        loaded = await keeper.load(db, cookie)
        assert loaded is not None and await keeper.access_token(db, loaded) == "access-1"
        assert await keeper.load(db, cookie + "x") is None


async def test_a_callback_with_another_state_or_from_another_browser_is_refused(
    keeper: SessionKeeper, database: Database
) -> None:
    async with database.sessionmaker() as db, db.begin():
        browser, url = await keeper.start_sign_in(db, return_to="/", prompt=None)
    state = url.split("state=")[1]
    for cookie, given in ((browser, "forged"), ("another-browser", state), (None, state)):
        async with database.sessionmaker() as db:
            with pytest.raises(SignInFailed):
                await keeper.finish_sign_in(db, cookie_value=cookie, state=given, code="good-code")
            await db.rollback()
    async with database.sessionmaker() as db, db.begin():  # an expired sign-in is refused too
        await db.execute(update(PendingSignIn).values(expires_at=datetime.now(UTC) - timedelta(1)))
    async with database.sessionmaker() as db:
        with pytest.raises(SignInFailed):
            await keeper.finish_sign_in(db, cookie_value=browser, state=state, code="good-code")


async def test_idle_and_expired_sessions_end(keeper: SessionKeeper, database: Database) -> None:
    for column in ("last_seen_at", "expires_at"):
        _, cookie = await _signed_in(keeper, database)
        async with database.sessionmaker() as db, db.begin():
            await db.execute(
                update(PortalSession).values({column: datetime.now(UTC) - timedelta(hours=2)})
            )
        async with database.sessionmaker() as db, db.begin():
            assert await keeper.load(db, cookie) is None
        async with database.sessionmaker() as db:
            assert (await db.scalars(select(PortalSession))).all() == []


async def test_the_access_token_is_refreshed_once_for_concurrent_requests(
    keeper: SessionKeeper, database: Database, identity: FakeIdentity
) -> None:
    _, cookie = await _signed_in(keeper, database)
    async with database.sessionmaker() as db, db.begin():
        await db.execute(update(PortalSession).values(access_expires_at=datetime.now(UTC)))

    async def one_request() -> str | None:
        async with database.sessionmaker() as db, db.begin():
            row = await keeper.load(db, cookie)
            assert row is not None
            return await keeper.access_token(db, row)

    tokens = await asyncio.gather(one_request(), one_request(), one_request())
    # identity rotates refresh tokens and revokes a family on reuse: exactly one refresh.
    assert identity.refreshed == 1 and tokens == ["access-2"] * 3
    identity.refuse_refresh = True
    async with database.sessionmaker() as db, db.begin():
        await db.execute(update(PortalSession).values(access_expires_at=datetime.now(UTC)))
    assert await one_request() is None  # identity said no: the session ends
    async with database.sessionmaker() as db:
        assert await keeper.load(db, cookie) is None


async def test_sign_out_here_or_everywhere(
    keeper: SessionKeeper, database: Database, identity: FakeIdentity
) -> None:
    first, _ = await _signed_in(keeper, database)
    await _signed_in(keeper, database)
    third, _ = await _signed_in(keeper, database)
    async with database.sessionmaker() as db, db.begin():
        row = await db.get(PortalSession, first.id)
        assert row is not None and await keeper.sign_out(db, row, everywhere=False) == 1
    assert identity.revoked == ["refresh-1"]
    async with database.sessionmaker() as db, db.begin():
        row = await db.get(PortalSession, third.id)
        assert row is not None and row.id_token is not None and b"id-3" not in row.id_token
        # Everywhere: then identity's end-session endpoint, with this sign-in's ID token.
        assert keeper.end_session_url(row) == "https://idp.example/logout?hint=id-3"
        assert await keeper.sign_out(db, row, everywhere=True) == 2
    assert sorted(identity.revoked) == ["refresh-1", "refresh-2", "refresh-3"]
    async with database.sessionmaker() as db:
        assert (await db.scalars(select(PortalSession))).all() == []


def test_a_sealed_token_opens_only_for_its_session() -> None:
    sealer = TokenSealer("test-secret")
    sealed = sealer.seal("a-token", session_id="s1")
    assert sealer.open(sealed, session_id="s1") == "a-token"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, session_id="s2")
    with pytest.raises(InvalidTag):
        TokenSealer("another-secret").open(sealed, session_id="s1")


async def test_forms_need_the_session_csrf_token_and_pages_carry_a_strict_policy(
    keeper: SessionKeeper, database: Database, database_url: str
) -> None:
    from portal.app import create_app

    app = create_app(PortalSettings(database_url=database_url))
    app.state.sessions = keeper
    app.state.database = database
    _, cookie = await _signed_in(keeper, database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
        client.cookies.set("pingtai_portal_session", cookie)
        refused = await client.post("/auth/logout", data={"csrf_token": "wrong"})
        assert refused.status_code == 403
        async with database.sessionmaker() as db:
            row = await keeper.load(db, cookie)
            assert row is not None
        home = await client.get("/")
        assert row.csrf_token in home.text
        policy = home.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert home.headers["cache-control"] == "private, no-store"
        signed_out = await client.post("/auth/logout", data={"csrf_token": row.csrf_token})
        assert signed_out.status_code == 303
        assert 'pingtai_portal_session=""' in signed_out.headers["set-cookie"]
        assert (await client.get("/me/applications")).headers["location"].startswith("/auth/login")


def test_the_end_session_url_names_the_hint_the_client_and_the_way_back() -> None:
    settings = PortalSettings(gateway_url="https://gov.example")
    oidc = OidcClient(settings, None, None)  # type: ignore[arg-type]
    url = urlsplit(oidc.end_session_url(id_token_hint="a.b.c"))
    assert (url.scheme, url.netloc, url.path) == ("https", "gov.example", "/oauth2/logout")
    assert parse_qs(url.query) == {
        "id_token_hint": ["a.b.c"],
        "client_id": ["portal"],
        "post_logout_redirect_uri": ["https://gov.example/auth/signed-out"],
    }

"""The identity app in process, on a migrated database, with a test issuer's tokens."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm

from libs.common.auth import JwksCache, TokenVerifier
from services.identity.app import create_app
from services.identity.settings import IdentitySettings
from tests.conftest import migrated

ISSUER = "https://pingtai.test"
SECRET = "identity-tests-secret-0123456789abcdef"


@dataclass
class Issuer:
    """Signs access tokens the identity app's verifier accepts."""

    key: Any
    kid: str = "test-key"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(
        self,
        *,
        sub: str | None = None,
        roles: list[str] | None = None,
        org: str | None = None,
        scope: str = "openid",
        acr: str = "1",
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": "pingtai",
            "sub": sub or uuid.uuid4().hex,
            "client_id": "tests",
            "roles": roles or ["citizen"],
            "scope": scope,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 300,
        }
        if org is not None:
            claims["org"] = org
        if acr:  # empty: no person signed in (a client-credentials token)
            claims["acr"] = acr
        return jwt.encode(
            claims, self.key, algorithm="RS256", headers={"kid": self.kid, "typ": "at+jwt"}
        )

    def headers(self, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}


@pytest.fixture(scope="session")
def issuer() -> Issuer:
    return Issuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
async def identity_app(database_url: str, issuer: Issuer) -> AsyncIterator[FastAPI]:
    await asyncio.to_thread(migrated, "services.identity", database_url)
    settings = IdentitySettings(
        database_url=database_url, issuer=ISSUER, secret_key=SECRET, nats_url=None
    )
    app = create_app(settings)
    jwks = issuer.jwks()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache("http://jwks.test/jwks.json", client=httpx.AsyncClient(transport=transport)),
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(identity_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
        yield client


Headers = Callable[..., dict[str, str]]

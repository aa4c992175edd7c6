"""An issuer for tests: RSA and EC keys, tokens signed with PyJWT, and a real JWKS server."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from libs.common.auth import JwksCache, TokenVerifier
from pingtai.natsserver import free_port

ISSUER = "https://pingtai.test"
AUDIENCE = "pingtai"
STARTUP_TIMEOUT_S = 10.0


@dataclass
class SigningKey:
    """A private key the test issuer signs with, and its public JWK."""

    kid: str
    alg: str
    private: Any

    @classmethod
    def rsa(cls, kid: str, bits: int = 2048) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


def claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a valid access token for a real-name-verified officer; None drops one."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "client_id": "portal",
        "org": "dept-health",
        "roles": ["officer"],
        "acr": "2",
        "scope": "openid workflow.tasks exchange.read",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: SigningKey, payload: dict[str, Any] | None = None, **headers: Any) -> str:
    """A token signed by ``key``, typed ``at+jwt`` unless ``headers`` say otherwise."""
    header = {"kid": key.kid, "typ": "at+jwt", **headers}
    header = {k: v for k, v in header.items() if v is not None}
    return jwt.encode(payload or claims(), key.private, algorithm=key.alg, headers=header)


@dataclass
class JwksServer:
    """A JWKS endpoint on a real port; tests change its keys and status and count its hits."""

    keys: list[SigningKey] = field(default_factory=list)
    extra: list[object] = field(default_factory=list)
    status: int = 200
    # Served as is instead of the keys, when set.
    document: object | None = None
    hits: int = 0
    url: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/.well-known/jwks.json", self.jwks)])

    async def jwks(self, request: Request) -> Response:
        self.hits += 1
        if self.status != 200:
            return Response(b"unavailable", status_code=self.status)
        if self.document is not None:
            return JSONResponse(self.document)
        return JSONResponse({"keys": [k.jwk() for k in self.keys] + self.extra})


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    """A JWKS server under uvicorn on a free 127.0.0.1 port, in the test's event loop."""
    server_state = JwksServer()
    port = free_port()
    config = uvicorn.Config(
        server_state.app(),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        server_state.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
        yield server_state
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, STARTUP_TIMEOUT_S)
        except TimeoutError:
            task.cancel()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Rig:
    """A verifier on the JWKS server, with its two clocks under the test's control."""

    verifier: TokenVerifier
    jwks: JwksCache
    server: JwksServer
    monotonic: FakeClock
    wall: FakeClock


MakeRig = Callable[..., Rig]


@pytest.fixture
async def rig(jwks_server: JwksServer) -> AsyncIterator[MakeRig]:
    """Build verifiers on the JWKS server: floor 30 s, max age 600 s, leeway 30 s by default."""
    made: list[TokenVerifier] = []

    def make(
        *,
        refetch_floor_s: float = 30.0,
        max_age_s: float = 600.0,
        url: str | None = None,
        **kw: Any,
    ) -> Rig:
        monotonic, wall = FakeClock(1000.0), FakeClock(time.time())
        jwks = JwksCache(
            url or jwks_server.url,
            refetch_floor_s=refetch_floor_s,
            max_age_s=max_age_s,
            timeout_s=2.0,
            clock=monotonic,
        )
        verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, clock=wall, **kw)
        made.append(verifier)
        return Rig(verifier, jwks, jwks_server, monotonic, wall)

    yield make
    for verifier in made:
        await verifier.aclose()


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey.rsa("rsa-1")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey.ec("ec-1")

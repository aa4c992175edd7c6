"""Forged access tokens at a protected endpoint of every part: another key, alg "none", HS256
keyed with the public key, expired, for another audience or issuer, tampered claims, a key
carried in the header. Each is a 401 problem with a Bearer challenge; a valid one passes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.hostile.expect import problem
from tests.hostile.parts import Running
from tests.identity.conftest import ISSUER, Issuer

# On SQLite only (the module's `parts` on one backend): a token is judged before any database is
# read, by the same code whatever the backend; the valid token's read itself runs on PostgreSQL
# in the authorisation matrix (tests/authz), with every other caller.
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.parametrize("parts", ["sqlite"], indirect=True),
]

# part, a protected endpoint, a caller it admits
PROTECTED = [
    ("identity", "/v1/users", {"roles": ["platform_admin"], "acr": "3"}),
    ("catalog", "/v1/item-drafts", {"roles": ["platform_admin"], "acr": "3"}),
    ("exchange", "/v1/grants", {"roles": ["platform_admin"], "acr": "3"}),
    ("workflow", "/v1/applications", {"roles": ["citizen"], "acr": "2"}),
    ("evaluation", "/v1/cases", {"roles": ["platform_admin"], "acr": "3"}),
    ("gateway", "/v1/applications", {"roles": ["platform_admin"], "acr": "3"}),
]
ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(caller: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    made: dict[str, Any] = {
        "iss": ISSUER, "aud": "pingtai", "sub": uuid.uuid4().hex, "client_id": "tests",
        "roles": caller["roles"], "scope": "openid", "jti": uuid.uuid4().hex, "iat": now,
        "exp": now + 300, "acr": caller.get("acr", "1"),
        **({"org": caller["org"]} if "org" in caller else {}),
    }  # fmt: skip
    made.update(changes)
    return {k: v for k, v in made.items() if v is not None}


def header(issuer: Issuer, **changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {"alg": "RS256", "typ": "at+jwt", "kid": issuer.kid, **changes}.items()
            if v is not None}  # fmt: skip


def signed(key: Any, payload: dict[str, Any], headers: dict[str, Any]) -> str:
    fields = {k: v for k, v in headers.items() if k != "alg"}
    return jwt.encode(payload, key, algorithm=headers["alg"], headers=fields)


def hs256(secret: bytes, payload: dict[str, Any], headers: dict[str, Any]) -> str:
    """An HS256 token keyed with ``secret`` (PyJWT refuses to use a public key this way, which
    is the attack: a verifier that lets the token pick the algorithm would accept it)."""
    signing_input = f"{segment(headers)}.{segment(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def public_pem(issuer: Issuer) -> bytes:
    key = issuer.key.public_key()
    return bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def tampered(issuer: Issuer, caller: dict[str, Any]) -> str:
    """A real token whose payload now says platform_admin, its signature kept."""
    head, _, sig = signed(issuer.key, claims(caller), header(issuer)).split(".")
    return f"{head}.{segment(claims(caller, roles=['platform_admin']))}.{sig}"


def with_own_jwk(issuer: Issuer, caller: dict[str, Any]) -> str:
    """Signed by the attacker, who puts their public key in the header (jwk, jku, x5u)."""
    jwk = json.loads(RSAAlgorithm.to_jwk(ATTACKER.public_key()))
    headers = header(issuer, jwk=jwk, jku="https://attacker.example/jwks.json",
                     x5u="https://attacker.example/cert.pem")  # fmt: skip
    return signed(ATTACKER, claims(caller), headers)


Forge = Callable[[Issuer, dict[str, Any]], str]
NOW = int(time.time())
FORGED: dict[str, Forge] = {
    "another-key-same-kid": lambda i, c: signed(ATTACKER, claims(c), header(i)),
    "unknown-kid": lambda i, c: signed(ATTACKER, claims(c), header(i, kid="other-key")),
    "kid-traversal": lambda i, c: signed(ATTACKER, claims(c), header(i, kid="../../../dev/null")),
    "alg-none": lambda i, c: f"{segment(header(i, alg='none'))}.{segment(claims(c))}.",
    "alg-none-uppercase": lambda i, c: f"{segment(header(i, alg='NONE'))}.{segment(claims(c))}.",
    "alg-none-with-signature": lambda i, c: ".".join(
        [
            segment(header(i, alg="none")),
            segment(claims(c)),
            signed(i.key, claims(c), header(i)).split(".")[2],
        ]
    ),  # fmt: skip
    "hs256-public-key-pem": lambda i, c: hs256(public_pem(i), claims(c), header(i, alg="HS256")),
    "hs256-jwk-json": lambda i, c: hs256(
        json.dumps(i.jwks()["keys"][0]).encode(), claims(c), header(i, alg="HS256")
    ),
    "expired": lambda i, c: signed(i.key, claims(c, iat=NOW - 7200, exp=NOW - 3600), header(i)),
    "not-yet-valid": lambda i, c: signed(i.key, claims(c, nbf=NOW + 3600), header(i)),
    "wrong-audience": lambda i, c: signed(i.key, claims(c, aud="another-platform"), header(i)),
    "wrong-issuer": lambda i, c: signed(i.key, claims(c, iss="https://evil.example"), header(i)),
    "no-expiry": lambda i, c: signed(i.key, claims(c, exp=None), header(i)),
    "no-subject": lambda i, c: signed(i.key, claims(c, sub=None), header(i)),
    "id-token-type": lambda i, c: signed(i.key, claims(c), header(i, typ="JWT")),
    "crit-header": lambda i, c: signed(i.key, claims(c), header(i, crit=["exp"])),
    "tampered-roles": tampered,
    "attacker-jwk-in-header": with_own_jwk,
    "garbage": lambda i, c: "not.a.token",
    "two-segments": lambda i, c: f"{segment(header(i))}.{segment(claims(c))}",
    "huge": lambda i, c: "a" * 20_000,
}


def _id(target: tuple[str, str, dict[str, Any]]) -> str:
    return target[0]


@pytest.mark.parametrize("target", PROTECTED, ids=_id)
@pytest.mark.parametrize("forgery", FORGED)
async def test_a_forged_token_is_a_401_problem(
    parts: dict[str, Running], issuer: Issuer, target: tuple[str, str, dict[str, Any]],
    forgery: str,
) -> None:  # fmt: skip
    part, path, caller = target
    token = FORGED[forgery](issuer, caller)
    response = await parts[part].http.get(path, headers={"Authorization": f"Bearer {token}"})
    problem(response, 401)
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), (
        response.headers
    )


@pytest.mark.parametrize("target", PROTECTED, ids=_id)
@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer  two  tokens"],
)
async def test_a_malformed_authorization_header_is_a_401_problem(
    parts: dict[str, Running], target: tuple[str, str, dict[str, Any]], authorization: str
) -> None:
    part, path, _ = target
    response = await parts[part].http.get(path, headers={"Authorization": authorization})
    problem(response, 401)


@pytest.mark.parametrize("target", PROTECTED, ids=_id)
async def test_the_same_request_with_a_valid_token_passes(
    parts: dict[str, Running], issuer: Issuer, target: tuple[str, str, dict[str, Any]]
) -> None:
    """The control: the refusals above are the token's, not the endpoint's."""
    part, path, caller = target
    token = signed(issuer.key, claims(caller), header(issuer))
    response = await parts[part].http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text

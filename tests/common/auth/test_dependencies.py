"""CurrentPrincipal and the guards in a part built with create_service_app, over HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from libs.common.auth import (
    AUTH_RESPONSES,
    CurrentPrincipal,
    OptionalPrincipal,
    Principal,
    Role,
    TokenVerifier,
    ensure_acts_for,
    require_acr,
    require_roles,
    require_scopes,
)
from libs.common.auth.dependencies import authenticate
from pingtai.natsserver import free_port
from tests.common.auth.conftest import ISSUER, JwksServer, SigningKey, claims, sign
from tests.common.conftest import build_app

Officer = Annotated[Principal, Depends(require_roles(Role.OFFICER, Role.DEPT_ADMIN))]
CanReadRecords = Annotated[Principal, Depends(require_scopes("exchange.read"))]
RealName = Annotated[Principal, Depends(require_acr(2))]

router = APIRouter(prefix="/v1", responses=AUTH_RESPONSES)


@router.get("/me")
async def me(principal: CurrentPrincipal) -> dict[str, Any]:
    return {
        "sub": principal.sub,
        "org": principal.org,
        "roles": sorted(principal.roles),
        "acr": principal.acr,
    }


@router.get("/me-by-hand")
async def me_by_hand(request: Request) -> dict[str, Any]:
    principal = await authenticate(request)
    return {"sub": principal.sub, "org": principal.org, "roles": sorted(principal.roles)}


@router.get("/maybe")
async def maybe(principal: OptionalPrincipal) -> dict[str, str | None]:
    return {"sub": principal.sub if principal else None}


@router.get("/inbox")
async def inbox(officer: Officer) -> dict[str, str]:
    return {"sub": officer.sub}


@router.get("/records", dependencies=[Depends(require_scopes("exchange.read", "exchange.audit"))])
async def records() -> dict[str, bool]:
    return {"ok": True}


@router.get("/profile")
async def profile(principal: RealName) -> dict[str, int]:
    return {"acr": principal.acr}


@router.get("/organisations/{org_id}/tasks")
async def tasks(org_id: str, principal: CurrentPrincipal) -> dict[str, str]:
    ensure_acts_for(principal, org_id)
    return {"org": org_id}


@pytest.fixture
def app(tmp_path: Path, jwks_server: JwksServer, rsa_key: SigningKey) -> FastAPI:
    jwks_server.keys = [rsa_key]
    return build_app(
        routers=[router],
        database_url=f"sqlite+aiosqlite:///{tmp_path}/sample.db",
        issuer=ISSUER,
        auth_jwks_url=jwks_server.url,
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://sample"
    ) as client:
        yield client
    verifier: TokenVerifier | None = getattr(app.state, "token_verifier", None)
    if verifier is not None:
        await verifier.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://pingtai.dev/problems/{code}"
    assert body["status"] == status
    return body


async def test_a_valid_token_reaches_the_endpoint(
    client: httpx.AsyncClient, rsa_key: SigningKey, app: FastAPI
) -> None:
    response = await client.get("/v1/me", headers=bearer(sign(rsa_key)))

    assert response.status_code == 200
    assert response.json() == {
        "sub": "user-1",
        "org": "dept-health",
        "roles": ["officer"],
        "acr": 2,
    }
    # Made lazily from the app's settings, then reused.
    assert isinstance(app.state.token_verifier, TokenVerifier)
    assert app.state.token_verifier.jwks.url.startswith("http://127.0.0.1:")


async def test_no_token_is_a_401_challenge_without_an_error_code(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/me")

    body = problem(response, 401, "authentication-required")
    assert response.headers["www-authenticate"] == 'Bearer realm="pingtai"'
    assert body["detail"] == "This endpoint needs an access token."


@pytest.mark.parametrize(
    ("authorization", "code", "challenge"),
    [
        ("Bearer", "invalid-token", 'Bearer realm="pingtai", error="invalid_token"'),
        ("Bearer   ", "invalid-token", 'Bearer realm="pingtai", error="invalid_token"'),
        ("bearer junk", "invalid-token", 'Bearer realm="pingtai", error="invalid_token"'),
        ("Bearer a.b.c", "invalid-token", 'Bearer realm="pingtai", error="invalid_token"'),
        ("Bearer a b", "invalid-token", 'Bearer realm="pingtai", error="invalid_token"'),
        ("Basic dXNlcjpwYXNz", "authentication-required", 'Bearer realm="pingtai"'),
        ("", "authentication-required", 'Bearer realm="pingtai"'),
        ("Token abc", "authentication-required", 'Bearer realm="pingtai"'),
    ],
)
async def test_a_malformed_authorization_header_is_a_401_never_a_500(
    client: httpx.AsyncClient, authorization: str, code: str, challenge: str
) -> None:
    response = await client.get("/v1/me", headers={"Authorization": authorization})

    problem(response, 401, code)
    assert response.headers["www-authenticate"].startswith(challenge)


async def test_an_expired_token_says_so(client: httpx.AsyncClient, rsa_key: SigningKey) -> None:
    token = sign(rsa_key, claims(exp=int(time.time()) - 300))

    response = await client.get("/v1/me", headers=bearer(token))

    body = problem(response, 401, "invalid-token")
    assert body["detail"] == "The access token has expired."
    assert response.headers["www-authenticate"] == (
        'Bearer realm="pingtai", error="invalid_token", '
        'error_description="The access token has expired."'
    )


async def test_the_optional_principal(client: httpx.AsyncClient, rsa_key: SigningKey) -> None:
    anonymous = await client.get("/v1/maybe")
    signed_in = await client.get("/v1/maybe", headers=bearer(sign(rsa_key)))
    bad = await client.get("/v1/maybe", headers=bearer(sign(rsa_key, claims(aud="x"))))

    assert anonymous.json() == {"sub": None}
    assert signed_in.json() == {"sub": "user-1"}
    # A token that is sent must be valid: no silent downgrade to anonymous.
    problem(bad, 401, "invalid-token")


@pytest.mark.parametrize(
    ("roles", "status"),
    [(["officer"], 200), (["dept_admin", "citizen"], 200), (["citizen"], 403), ([], 403)],
)
async def test_the_role_guard(
    client: httpx.AsyncClient, rsa_key: SigningKey, roles: list[str], status: int
) -> None:
    response = await client.get("/v1/inbox", headers=bearer(sign(rsa_key, claims(roles=roles))))

    if status == 200:
        assert response.json() == {"sub": "user-1"}
    else:
        body = problem(response, 403, "forbidden")
        assert body["detail"] == "This needs one of the roles: dept_admin, officer."


async def test_the_scope_guard(client: httpx.AsyncClient, rsa_key: SigningKey) -> None:
    both = sign(rsa_key, claims(scope="exchange.read exchange.audit"))
    one = sign(rsa_key, claims(scope="exchange.read"))

    assert (await client.get("/v1/records", headers=bearer(both))).json() == {"ok": True}
    response = await client.get("/v1/records", headers=bearer(one))
    problem(response, 403, "insufficient-scope")
    assert response.headers["www-authenticate"] == (
        'Bearer realm="pingtai", error="insufficient_scope", scope="exchange.audit exchange.read"'
    )


@pytest.mark.parametrize(("acr", "status"), [("3", 200), (2, 200), ("1", 401), (None, 401)])
async def test_the_assurance_guard_asks_for_a_step_up(
    client: httpx.AsyncClient, rsa_key: SigningKey, acr: object, status: int
) -> None:
    response = await client.get("/v1/profile", headers=bearer(sign(rsa_key, claims(acr=acr))))

    if status == 200:
        assert response.json()["acr"] == int(str(acr))
    else:
        problem(response, 401, "insufficient-assurance")
        assert response.headers["www-authenticate"] == (
            'Bearer realm="pingtai", error="insufficient_user_authentication", '
            'error_description="assurance level 2 required", acr_values="2"'
        )


@pytest.mark.parametrize(
    ("org", "roles", "status"),
    [
        ("dept-health", ["officer"], 200),
        ("dept-tax", ["officer"], 403),
        (None, ["citizen"], 403),
        (None, ["platform_admin"], 200),
    ],
)
async def test_acting_for_an_organisation(
    client: httpx.AsyncClient, rsa_key: SigningKey, org: str | None, roles: list[str], status: int
) -> None:
    token = sign(rsa_key, claims(org=org, roles=roles))

    response = await client.get("/v1/organisations/dept-health/tasks", headers=bearer(token))

    if status == 200:
        assert response.json() == {"org": "dept-health"}
    else:
        body = problem(response, 403, "forbidden")
        assert body["detail"] == "You do not act for this organisation."


async def test_no_keys_yet_is_a_503_and_an_unknown_key_a_401(
    tmp_path: Path, jwks_server: JwksServer, rsa_key: SigningKey
) -> None:
    down = build_app(
        routers=[router],
        database_url=f"sqlite+aiosqlite:///{tmp_path}/down.db",
        issuer=ISSUER,
        auth_jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json",
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(down), base_url="http://s") as c:
        response = await c.get("/v1/me", headers=bearer(sign(rsa_key)))
        await down.state.token_verifier.aclose()
    body = problem(response, 503, "token-verification-unavailable")
    assert response.headers["retry-after"] == "30"
    assert "signing keys cannot be fetched" in body["detail"]

    # Keys held, the JWKS down since: a token with an unknown key is the client's problem.
    up = build_app(
        routers=[router],
        database_url=f"sqlite+aiosqlite:///{tmp_path}/up.db",
        issuer=ISSUER,
        auth_jwks_url=jwks_server.url,
        auth_jwks_refetch_floor_s=0,
    )
    jwks_server.keys = [rsa_key]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(up), base_url="http://s") as c:
        assert (await c.get("/v1/me", headers=bearer(sign(rsa_key)))).status_code == 200
        jwks_server.status = 503
        response = await c.get("/v1/me", headers=bearer(sign(SigningKey.ec("new"))))
        assert (await c.get("/v1/me", headers=bearer(sign(rsa_key)))).status_code == 200
        await up.state.token_verifier.aclose()
    body = problem(response, 401, "invalid-token")
    assert body["detail"] == "The access token's signing key is unknown."
    assert jwks_server.hits == 2


async def test_the_lifespan_closes_the_verifier(app: FastAPI, rsa_key: SigningKey) -> None:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://sample"
        ) as client:
            assert (await client.get("/v1/me", headers=bearer(sign(rsa_key)))).status_code == 200
        verifier: TokenVerifier = app.state.token_verifier
    assert app.state.token_verifier is None
    assert verifier.jwks._client.is_closed


async def test_openapi_declares_the_bearer_scheme_and_the_errors(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()

    assert document["components"]["securitySchemes"]["AccessToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from the platform's identity service (RFC 9068 JWT).",
    }
    me = document["paths"]["/v1/me"]["get"]
    assert me["security"] == [{"AccessToken": []}]
    assert {"401", "403", "503"} <= me["responses"].keys()
    assert "security" not in document["paths"]["/healthz"]["get"]
    # A token is welcome but not needed where the route reads an OptionalPrincipal.
    assert document["paths"]["/v1/maybe"]["get"]["security"] == [{}, {"AccessToken": []}]
    assert document["paths"]["/v1/inbox"]["get"]["security"] == [{"AccessToken": []}]
    # Every route of a part declares the shared problems: an unreadable body or foreign
    # cursor (400), nothing by that id (404).
    assert {"400", "404", "422", "500"} <= me["responses"].keys()
    assert "application/problem+json" in me["responses"]["404"]["content"]
    assert "OptionalAccessToken" not in document["components"]["securitySchemes"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer   ",
        "bearer junk",
        "Bearer a.b.c",
        "Bearer a b",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        " Bearer {token}",
        "Bearer\t{token}",
        "Bearer {token}",
        "bEaReR {token}",
        "Bearer   {token}  ",
    ],
)
async def test_authenticate_by_hand_answers_as_the_dependency(
    client: httpx.AsyncClient, rsa_key: SigningKey, authorization: str | None
) -> None:
    """``authenticate(request)`` (for handlers FastAPI resolves no dependencies for) reads the
    header itself; every answer is the one ``CurrentPrincipal`` gives."""
    headers = {"X-Request-ID": "same-request"}
    if authorization is not None:
        headers["Authorization"] = authorization.replace("{token}", sign(rsa_key))

    expected = await client.get("/v1/me", headers=headers)
    answered = await client.get("/v1/me-by-hand", headers=headers)

    assert answered.status_code == expected.status_code
    assert answered.headers.get("www-authenticate") == expected.headers.get("www-authenticate")
    assert answered.headers["content-type"] == expected.headers["content-type"]
    if expected.status_code == 200:
        assert answered.json() == {"sub": "user-1", "org": "dept-health", "roles": ["officer"]}
    else:
        assert answered.json() == expected.json()

"""The edge: route policies, tokens and keys at the door, header and body limits, CORS, logs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import structlog

from tests.gateway.conftest import ISSUER_KEYS, StartPlatform
from tests.gateway.test_keys import call, make_key

POLICIES = {
    "/api/catalog": {"auth": "token", "cors_origins": ["https://apps.example"]},
    "/api/catalog/v1/open": {"auth": "anonymous", "max_body_bytes": 10},
    "/api/identity/v1/partners": {"auth": "key"},
}


async def test_a_route_needing_a_token_refuses_without_one(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform(route_policies=POLICIES) as p:
        response, problem = await call(client, "GET", f"{p.url}/api/catalog/v1/items")
        assert response.status == 401
        assert problem["type"].endswith("/authentication-required")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        response, problem = await call(
            client,
            "GET",
            f"{p.url}/api/catalog/v1/items",
            headers={"Authorization": "Bearer not.a.token"},
        )
        assert response.status == 401
        assert problem["type"].endswith("/invalid-token")
        assert p.parts["catalog"].hits == 0  # refused at the edge
        response, echo = await call(
            client, "GET", f"{p.url}/api/catalog/v1/items", headers=ISSUER_KEYS.headers()
        )
        assert response.status == 200 and echo["path"] == "/v1/items"
        # A more specific route under it is open, and still strips the part's prefix.
        response, echo = await call(client, "GET", f"{p.url}/api/catalog/v1/open/data")
        assert response.status == 200
        assert echo["path"] == "/v1/open/data"
        assert dict(echo["headers"])["x-forwarded-prefix"] == "/api/catalog"
        # An invalid token is refused even where anonymous calls are welcome.
        response, _ = await call(
            client,
            "GET",
            f"{p.url}/api/identity/v1/users",
            headers={"Authorization": "Bearer x.y.z"},
        )
        assert response.status == 401


async def test_a_route_needing_a_key(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform(route_policies=POLICIES) as p:
        response, problem = await call(
            client, "GET", f"{p.url}/api/identity/v1/partners", headers=ISSUER_KEYS.headers()
        )
        assert response.status == 401
        assert problem["type"].endswith("/api-key-required")
        made = await make_key(client, p)
        response, echo = await call(
            client,
            "GET",
            f"{p.url}/api/identity/v1/partners",
            headers={"X-API-Key": made["issued"]["key"]},
        )
        assert response.status == 200 and echo["path"] == "/v1/partners"


async def test_a_plan_needing_a_client_credentials_token(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        made = await make_key(client, p, requires_token=True, client_id="ent-1-system")
        key = {"X-API-Key": made["issued"]["key"]}
        url = f"{p.url}/api/catalog/v1/items"
        response, problem = await call(client, "GET", url, headers=key)
        assert response.status == 401
        person = ISSUER_KEYS.headers(client_id="ent-1-system", acr="2")
        response, problem = await call(client, "GET", url, headers={**key, **person})
        assert response.status == 403
        stranger = ISSUER_KEYS.headers(client_id="someone-else", acr="")
        response, problem = await call(client, "GET", url, headers={**key, **stranger})
        assert response.status == 403
        system = ISSUER_KEYS.headers(client_id="ent-1-system", acr="", roles=[])
        response, _ = await call(client, "GET", url, headers={**key, **system})
        assert response.status == 200


async def test_header_and_route_body_limits(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform(route_policies=POLICIES, max_header_count=20) as p:
        many = {f"X-Extra-{n}": "1" for n in range(25)}
        response, problem = await call(client, "GET", f"{p.url}/api/identity/x", headers=many)
        assert response.status == 431
        assert problem["type"].endswith("/request-header-fields-too-large")
        response, _ = await call(
            client, "GET", f"{p.url}/api/identity/x", headers={"X-Big": "a" * 17_000}
        )
        assert response.status in (431, 400)  # 400: uvicorn's own header limit may come first
        response, problem = await call(
            client, "POST", f"{p.url}/api/catalog/v1/open/upload", data=b"x" * 11
        )
        assert response.status == 413
        assert problem["type"].endswith("/payload-too-large")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"abcd"

        response, problem = await call(
            client, "POST", f"{p.url}/api/catalog/v1/open/upload", data=chunks()
        )
        assert response.status == 413
        assert p.parts["catalog"].hits == 0


async def test_cors_is_configured_per_route(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    preflight = {
        "Origin": "https://apps.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with platform(route_policies=POLICIES) as p:
        # Answered before any credential is asked for.
        response, _ = await call(
            client, "OPTIONS", f"{p.url}/api/catalog/v1/items", headers=preflight
        )
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://apps.example"
        response, _ = await call(
            client, "OPTIONS", f"{p.url}/api/identity/v1/users", headers=preflight
        )
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_access_log_and_metrics_name_the_application(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        made = await make_key(client, p)
        app_id = made["application"]["id"]
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            response, _ = await call(
                client,
                "GET",
                f"{p.url}/api/catalog/v1/items",
                headers={"X-API-Key": made["issued"]["key"]},
            )
        assert response.status == 200
        (line,) = [e for e in logs if e["event"] == "request"]
        assert line["app"] == app_id
        assert line["key"] == made["issued"]["id"]
        assert line["status"] == 200
        async with client.get(f"{p.url}/metrics") as metrics:
            text = await metrics.text()
        assert (
            f'pingtai_gateway_requests_total{{app="{app_id}",route="/api/catalog/*",status="200"}}'
            in text
        )


async def test_a_route_limits_each_token_subject(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    policies = {"/api/catalog": {"token_per_minute": 3}}
    async with platform(route_policies=policies) as p:
        first = ISSUER_KEYS.headers(sub="system-a")
        again = ISSUER_KEYS.headers(sub="system-a")  # another token, the same subject
        other = ISSUER_KEYS.headers(sub="system-b")
        url = f"{p.url}/api/catalog/v1/items"
        statuses = [(await call(client, "GET", url, headers=h))[0].status
                    for h in (first, again, first, again)]  # fmt: skip
        assert statuses == [200, 200, 200, 429]
        response, _ = await call(client, "GET", url, headers=other)
        assert response.status == 200
        assert response.headers["RateLimit-Policy"] == '"minute";q=3;w=60'


async def test_access_log_line_carries_trace_and_token(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    """One line per forwarded request, with the trace the part received and the token's
    client and subject (``client`` stays the caller's address)."""
    async with platform() as p:
        caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        headers = {
            **ISSUER_KEYS.headers(sub="person-1", client_id="app-client"),
            "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01",
        }
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            response, echo = await call(
                client, "GET", f"{p.url}/api/identity/v1/me", headers=headers
            )
        assert response.status == 200
        (line,) = [e for e in logs if e["event"] == "request"]
        assert line["client_id"] == "app-client"
        assert line["sub"] == "person-1"
        assert line["client"] == "127.0.0.1"
        assert line["route"] == "/api/identity/*"
        assert line["status"] == 200
        sent = dict(echo["headers"])["traceparent"]
        assert sent.split("-")[1] == caller_trace
        assert response.headers["x-request-id"] == dict(echo["headers"])["x-request-id"]


async def test_access_log_can_keep_only_errors_or_be_off(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    for setting, expected in (("errors", [404]), ("off", [])):
        async with platform(access_log=setting) as p:
            with structlog.testing.capture_logs(
                processors=[structlog.contextvars.merge_contextvars]
            ) as logs:
                ok, _ = await call(client, "GET", f"{p.url}/api/identity/v1/x")
                missing, _ = await call(client, "GET", f"{p.url}/api/nothing/v1/x")
            assert (ok.status, missing.status) == (200, 404)
            assert [e["status"] for e in logs if e["event"] == "request"] == expected


async def test_the_portal_names_each_anonymous_visitor_for_their_own_limit(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    """The portal calls for every anonymous visitor from its own address: with its
    client-credentials token the visitor's address it names is counted, so one visitor over the
    limit does not stop another; nobody else can name an address."""
    async with platform(anonymous_per_minute=2) as p:
        url = f"{p.url}/api/catalog/v1/items"
        portal = ISSUER_KEYS.token(sub="portal", client_id="portal", roles=[], acr="")

        def visitor(address: str, token: str = portal) -> dict[str, str]:
            return {"X-Pingtai-Forwarder": token, "X-Pingtai-Visitor-Address": address}

        statuses = [(await call(client, "GET", url, headers=visitor("203.0.113.7")))[0].status
                    for _ in range(3)]  # fmt: skip
        assert statuses == [200, 200, 429]
        # Another visitor through the same portal still gets their pages.
        response, echo = await call(client, "GET", url, headers=visitor("198.51.100.20"))
        assert response.status == 200
        # The headers stay at the edge: the part never sees the portal's token.
        names = {name.lower() for name, _ in echo["headers"]}
        assert not names & {"x-pingtai-forwarder", "x-pingtai-visitor-address"}
        # The portal's own address still has its whole budget (the visitors were not counted
        # there), and is what anyone else's naming of an address counts against.
        others = [
            visitor("192.0.2.1", ISSUER_KEYS.token(client_id="some-app", acr="")),  # not trusted
            visitor("192.0.2.2", ISSUER_KEYS.token(sub="p", client_id="portal")),  # a person's
            visitor("192.0.2.3", "not.a.token"),
            visitor("not-an-address"),
        ]
        statuses = [(await call(client, "GET", url, headers=h))[0].status for h in others]
        assert statuses == [200, 200, 429, 429]

"""Plans, applications and API keys: issue, use, revoke, expire; who may do what; usage."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import select

from gateway.applications.keys import KeyHasher
from gateway.applications.models import ApiKey
from tests.gateway.conftest import ISSUER_KEYS, Platform, StartPlatform

ADMIN = ISSUER_KEYS.headers(roles=["platform_admin"], acr="", sub="admin-client")
AGENT = ISSUER_KEYS.headers(roles=["enterprise_agent"], org="ent-1", sub="agent-1")
OTHER_AGENT = ISSUER_KEYS.headers(roles=["enterprise_agent"], org="ent-2", sub="agent-2")
CITIZEN = ISSUER_KEYS.headers(roles=["citizen"], sub="citizen-1")


async def call(
    client: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[aiohttp.ClientResponse, Any]:
    async with client.request(method, url, **kwargs) as response:
        body = await response.read()
        is_json = "json" in response.headers.get("Content-Type", "")
        return response, json.loads(body) if body and is_json else body


async def make_key(
    client: aiohttp.ClientSession,
    p: Platform,
    *,
    per_minute: int = 100,
    per_day: int = 1000,
    requires_token: bool = False,
    client_id: str | None = None,
    expires_at: str | None = None,
    code: str = "basic",
) -> dict[str, Any]:
    """A plan (made if new), an application of ent-1 and a key on the plan."""
    response, plan = await call(
        client,
        "POST",
        f"{p.url}/v1/plans",
        headers=ADMIN,
        json={
            "code": code,
            "name": f"Plan {code}",
            "requests_per_minute": per_minute,
            "requests_per_day": per_day,
            "requires_token": requires_token,
        },
    )
    assert response.status == 201, plan
    app_body: dict[str, Any] = {"name": f"helper-{code}"}
    if client_id:
        app_body["client_id"] = client_id
    response, application = await call(
        client, "POST", f"{p.url}/v1/applications", headers=AGENT, json=app_body
    )
    assert response.status == 201, application
    key_body: dict[str, Any] = {"plan_id": plan["id"], "label": "server"}
    if expires_at:
        key_body["expires_at"] = expires_at
    response, issued = await call(
        client,
        "POST",
        f"{p.url}/v1/applications/{application['id']}/keys",
        headers=AGENT,
        json=key_body,
    )
    assert response.status == 201, issued
    assert response.headers["Cache-Control"] == "no-store"
    return {"plan": plan, "application": application, "issued": issued}


async def test_key_lifecycle_issue_use_revoke(
    platform: StartPlatform, client: aiohttp.ClientSession, database_url: str
) -> None:
    async with platform(database_url=database_url) as p:
        made = await make_key(client, p)
        issued, application = made["issued"], made["application"]
        key = issued["key"]
        assert key.startswith("pt_test_") and len(key) == len("pt_test_") + 43
        assert issued["hint"] == key[:12] and issued["status"] == "active"
        assert application["org_id"] == "ent-1"

        # Stored only as the keyed hash: no column holds the key.
        async with p.app.state.database.sessionmaker() as session:
            row = (await session.execute(select(ApiKey))).scalar_one()
        assert row.key_hash == KeyHasher("change-me-in-production").digest(key)
        assert row.key_hash != hashlib.sha256(key.encode()).hexdigest()
        assert key not in repr(vars(row))
        assert hmac.compare_digest(row.hint, key[:12])

        # Used: forwarded without the key, with the application named by the gateway.
        response, echo = await call(
            client,
            "GET",
            f"{p.url}/api/catalog/v1/items",
            headers={"X-API-Key": key, "X-Pingtai-Application": "spoofed"},
        )
        assert response.status == 200
        sent = dict(echo["headers"])
        assert "x-api-key" not in sent
        assert sent["x-pingtai-application"] == application["id"]
        assert response.headers["RateLimit-Policy"] == '"minute";q=100;w=60, "day";q=1000;w=86400'
        assert response.headers["RateLimit"].startswith('"minute";r=')

        # The listing never shows the key again.
        response, keys = await call(
            client, "GET", f"{p.url}/v1/applications/{application['id']}/keys", headers=AGENT
        )
        assert response.status == 200
        assert [k["id"] for k in keys] == [issued["id"]]
        assert "key" not in keys[0]

        # Revoked: refused at once, and revoking again changes nothing.
        revoke_url = f"{p.url}/v1/applications/{application['id']}/keys/{issued['id']}"
        response, _ = await call(client, "DELETE", revoke_url, headers=AGENT)
        assert response.status == 204
        response, problem = await call(
            client, "GET", f"{p.url}/api/catalog/v1/items", headers={"X-API-Key": key}
        )
        assert response.status == 401
        assert problem["type"].endswith("/invalid-api-key")
        assert "revoked" in problem["detail"]
        assert response.headers["WWW-Authenticate"].startswith("ApiKey")
        response, _ = await call(client, "DELETE", revoke_url, headers=AGENT)
        assert response.status == 204
        response, keys = await call(
            client, "GET", f"{p.url}/v1/applications/{application['id']}/keys", headers=AGENT
        )
        assert keys[0]["status"] == "revoked"


async def test_an_expired_key_is_refused(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        expires = datetime.now(UTC) + timedelta(seconds=1.5)
        made = await make_key(client, p, expires_at=expires.isoformat())
        key = made["issued"]["key"]
        response, _ = await call(
            client, "GET", f"{p.url}/api/catalog/v1/x", headers={"X-API-Key": key}
        )
        assert response.status == 200
        await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
        response, problem = await call(
            client, "GET", f"{p.url}/api/catalog/v1/x", headers={"X-API-Key": key}
        )
        assert response.status == 401
        assert "expired" in problem["detail"]
        _, keys = await call(
            client,
            "GET",
            f"{p.url}/v1/applications/{made['application']['id']}/keys",
            headers=AGENT,
        )
        assert keys[0]["status"] == "expired"
        # An expiry in the past or without a zone is refused at issue.
        for bad in ("2020-01-01T00:00:00Z", "2099-01-01T00:00:00"):
            response, problem = await call(
                client,
                "POST",
                f"{p.url}/v1/applications/{made['application']['id']}/keys",
                headers=AGENT,
                json={"plan_id": made["plan"]["id"], "expires_at": bad},
            )
            assert response.status == 422, problem


async def test_malformed_and_unknown_keys_are_refused(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        for key in ("nonsense", "pt_test_" + "A" * 43, "pt_live_" + "A" * 43):
            response, problem = await call(
                client, "GET", f"{p.url}/api/catalog/v1/x", headers={"X-API-Key": key}
            )
            assert response.status == 401, key
            assert problem["type"].endswith("/invalid-api-key")
        assert p.parts["catalog"].hits == 0


async def test_who_may_manage_plans_applications_and_keys(
    platform: StartPlatform, client: aiohttp.ClientSession
) -> None:
    async with platform() as p:
        plan_body = {
            "code": "free",
            "name": "Free",
            "requests_per_minute": 10,
            "requests_per_day": 100,
        }
        response, _ = await call(client, "POST", f"{p.url}/v1/plans", headers=AGENT, json=plan_body)
        assert response.status == 403
        response, _ = await call(client, "POST", f"{p.url}/v1/plans", json=plan_body)
        assert response.status == 401
        made = await make_key(client, p)
        app_id = made["application"]["id"]
        # Another organisation's agent does not see it; a citizen manages no applications.
        response, _ = await call(
            client, "GET", f"{p.url}/v1/applications/{app_id}", headers=OTHER_AGENT
        )
        assert response.status == 404
        response, listing = await call(
            client, "GET", f"{p.url}/v1/applications", headers=OTHER_AGENT
        )
        assert listing["items"] == []
        response, _ = await call(client, "GET", f"{p.url}/v1/applications", headers=CITIZEN)
        assert response.status == 403
        response, _ = await call(
            client,
            "POST",
            f"{p.url}/v1/applications",
            headers=AGENT,
            json={"name": "for another org", "org_id": "ent-2"},
        )
        assert response.status == 403
        # A platform admin sees every organisation's.
        response, listing = await call(client, "GET", f"{p.url}/v1/applications", headers=ADMIN)
        assert [a["id"] for a in listing["items"]] == [app_id]
        # Bad input is a 4xx problem, never a 500.
        for body in ({"name": ""}, {"name": "x", "unknown": 1}, {"name": 5}):
            response, problem = await call(
                client, "POST", f"{p.url}/v1/applications", headers=AGENT, json=body
            )
            assert response.status == 422, problem
        response, problem = await call(
            client,
            "POST",
            f"{p.url}/v1/applications/{app_id}/keys",
            headers=AGENT,
            json={"plan_id": "0" * 32},
        )
        assert response.status == 422
        # Unpublished plans are hidden from everyone but platform admins.
        plan_id = made["plan"]["id"]
        response, _ = await call(
            client, "PATCH", f"{p.url}/v1/plans/{plan_id}", headers=ADMIN, json={"published": False}
        )
        assert response.status == 200
        _, public = await call(client, "GET", f"{p.url}/v1/plans")
        assert public["items"] == []
        _, everything = await call(client, "GET", f"{p.url}/v1/plans", headers=ADMIN)
        assert [plan["code"] for plan in everything["items"]] == ["basic"]


async def test_usage_shows_calls_errors_and_quota_left(
    platform: StartPlatform, client: aiohttp.ClientSession, database_url: str
) -> None:
    async with platform(database_url=database_url) as p:
        made = await make_key(client, p, per_day=50)
        key = made["issued"]["key"]
        app_id = made["application"]["id"]
        for path in ("/api/catalog/v1/a", "/api/catalog/v1/b", "/api/nothing/here"):
            await call(client, "GET", f"{p.url}{path}", headers={"X-API-Key": key})
        await p.app.state.usage.flush()
        response, usage = await call(
            client, "GET", f"{p.url}/v1/applications/{app_id}/usage", headers=AGENT
        )
        assert response.status == 200, usage
        assert usage["days"] == [
            {"day": datetime.now(UTC).date().isoformat(), "calls": 3, "errors": 1, "rejected": 0}
        ]
        (quota,) = usage["keys"]
        assert quota["requests_per_day"] == 50
        # Leased slices count as taken: what is left is at most 47, never more.
        assert 3 <= quota["used_today"] <= 50
        assert quota["quota_left_today"] == 50 - quota["used_today"]
        _, keys = await call(client, "GET", f"{p.url}/v1/applications/{app_id}/keys", headers=AGENT)
        assert keys[0]["last_used_at"] is not None
        response, _ = await call(
            client, "GET", f"{p.url}/v1/applications/{app_id}/usage", headers=OTHER_AGENT
        )
        assert response.status == 404

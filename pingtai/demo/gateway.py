"""The demo province's developer side: plans, and a developer application of an enterprise with a
key (shown at seeding, as the other demo credentials are).

Safe to run again: plans and the application are found when they exist; the demo key is issued
anew each run and the previous demo key revoked, since a key is only ever shown once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from pingtai.demo.identity import ORGANISATIONS

Say = Callable[[str], None]

DEMO_APPLICATION = "云栖办事助手 Yunqi errand helper"
DEMO_KEY_LABEL = "demo"
# (code, name, per minute, per day, needs a client-credentials token, about)
PLANS: tuple[tuple[str, str, int, int, bool, str], ...] = (
    ("free", "免费版 Free", 60, 1_000, False, "To try the open APIs."),
    ("standard", "标准版 Standard", 600, 100_000, False, "For an enterprise's products."),
    (
        "partner",
        "合作伙伴版 Partner",
        6_000,
        2_000_000,
        True,
        "For departments' and partners' systems; needs a client-credentials token too.",
    ),
)


async def _expect(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response


async def _plans(client: httpx.AsyncClient) -> dict[str, str]:
    for code, name, per_minute, per_day, requires_token, about in PLANS:
        created = await client.post(
            "/v1/plans",
            json={
                "code": code,
                "name": name,
                "description": about,
                "requests_per_minute": per_minute,
                "requests_per_day": per_day,
                "requires_token": requires_token,
            },
        )
        await _expect(created, 201, 409)
    listed = await _expect(await client.get("/v1/plans", params={"limit": 200}), 200)
    return {plan["code"]: plan["id"] for plan in listed.json()["items"]}


async def _enterprise_id(client: httpx.AsyncClient) -> str:
    yunqi = next(o for o in ORGANISATIONS if o.key == "yunqi")
    found = await client.get("/api/identity/v1/organisations", params={"name": yunqi.name})
    return str((await _expect(found, 200)).json()["items"][0]["id"])


async def _application(client: httpx.AsyncClient, org_id: str) -> dict[str, Any]:
    created = await client.post(
        "/v1/applications",
        json={
            "name": DEMO_APPLICATION,
            "description": "The demo enterprise's app that looks up service items for its staff.",
            "org_id": org_id,
        },
    )
    await _expect(created, 201, 409)
    if created.status_code == 201:
        application: dict[str, Any] = created.json()
        return application
    listed = await _expect(
        await client.get("/v1/applications", params={"org_id": org_id, "limit": 200}), 200
    )
    return next(a for a in listed.json()["items"] if a["name"] == DEMO_APPLICATION)


async def seed_gateway(client: httpx.AsyncClient, say: Say) -> int:
    """Plans, the demo developer application and a fresh demo key (printed once)."""
    plans = await _plans(client)
    application = await _application(client, await _enterprise_id(client))
    keys_url = f"/v1/applications/{application['id']}/keys"
    for key in (await _expect(await client.get(keys_url), 200)).json():
        if key["label"] == DEMO_KEY_LABEL and key["status"] == "active":
            await _expect(await client.delete(f"{keys_url}/{key['id']}"), 204)
    issued = await _expect(
        await client.post(keys_url, json={"plan_id": plans["standard"], "label": DEMO_KEY_LABEL}),
        201,
    )
    say(f"    {len(PLANS)} plans; application {DEMO_APPLICATION!r} of the Yunqi enterprise")
    say(f"    demo API key (send as X-API-Key; shown once, revoked at the next seeding): "
        f"{issued.json()['key']}")  # fmt: skip
    return len(PLANS) + 2

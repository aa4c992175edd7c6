"""The evaluation app starts on a migrated database and answers its health checks."""

from __future__ import annotations

import httpx


async def test_health_and_indicator_definitions(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    response = await client.get("/v1/indicators")
    assert response.status_code == 200
    keys = {i["key"] for i in response.json()}
    assert {"online_completion_rate", "on_time_rate", "bad_review_rate"} <= keys

"""The plans and applications lists refuse a cursor they did not give out: a 400 problem."""

from __future__ import annotations

import aiohttp

from libs.common.pagination import encode_cursor
from tests.gateway.conftest import StartPlatform
from tests.gateway.test_keys import ADMIN, AGENT, call, make_key

# Each was a 500 or a silently ignored cursor before the lists read a shape.
FORGED = [10**30, ["garbage", "x"], "a\u0000b", "", "x" * 600, 7, None, {"code": "x"}]


async def test_forged_cursors_are_400_problems(
    platform: StartPlatform, client: aiohttp.ClientSession, database_url: str
) -> None:
    async with platform(database_url=database_url) as p:
        for path, headers in (("/v1/plans", ADMIN), ("/v1/plans", {}), ("/v1/applications", AGENT)):
            for position in FORGED:
                params = {"cursor": encode_cursor(position)}
                response, problem = await call(
                    client, "GET", f"{p.url}{path}", params=params, headers=headers
                )
                assert response.status == 400, (path, position, problem)
                assert response.headers["Content-Type"] == "application/problem+json"
                assert problem["type"].endswith("/invalid-cursor"), (path, position)


async def test_each_list_takes_the_cursor_it_gives_out(
    platform: StartPlatform, client: aiohttp.ClientSession, database_url: str
) -> None:
    async with platform(database_url=database_url) as p:
        for code in ("basic", "extra"):  # two plans, two applications
            await make_key(client, p, code=code)
        for path, headers in (("/v1/plans", ADMIN), ("/v1/applications", AGENT)):
            url = f"{p.url}{path}"
            _, first = await call(client, "GET", url, params={"limit": 1}, headers=headers)
            assert first["next_cursor"] is not None, path
            params = {"limit": 1, "cursor": first["next_cursor"]}
            response, second = await call(client, "GET", url, params=params, headers=headers)
            assert response.status == 200, second
            assert len(second["items"]) == 1
            assert second["items"][0]["id"] != first["items"][0]["id"], path

"""Every identity list refuses a cursor it did not give out with the 400 invalid-cursor problem."""

from __future__ import annotations

import httpx
import pytest

from libs.common.pagination import encode_cursor
from tests.identity.conftest import Issuer
from tests.identity.test_people_and_organisations import PROBLEM, credit_code

# Each was a 500 or a silently ignored cursor before the lists read a shape.
FORGED = [10**30, ["garbage", "x"], "a\u0000b", "", "x" * 600, 7, None, {"id": "x"}]
LISTS = [
    "/v1/clients",
    "/v1/organisations",
    f"/v1/organisations/{'0' * 32}/memberships",
    "/v1/users",
]


@pytest.mark.parametrize("path", LISTS)
async def test_forged_cursors_are_400_problems(
    client: httpx.AsyncClient, issuer: Issuer, path: str
) -> None:
    admin = issuer.headers(roles=["platform_admin"])
    for position in FORGED:
        response = await client.get(path, params={"cursor": encode_cursor(position)}, headers=admin)
        assert response.status_code == 400, (position, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/invalid-cursor"), position


async def test_organisations_take_the_cursor_they_give_out(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    admin = issuer.headers(roles=["platform_admin"])
    for index, name in enumerate(["杭州市市场监督管理局", "杭州市公安局"]):
        body = {
            "kind": "enterprise",
            "name": name,
            "region_code": "330106",
            "credit_code": credit_code(f"MA2AB3C{index}"),
        }
        created = await client.post("/v1/organisations", json=body, headers=admin)
        assert created.status_code == 201, created.text
    first = (await client.get("/v1/organisations?limit=1", headers=admin)).json()
    second = await client.get(
        "/v1/organisations", params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin
    )
    assert second.status_code == 200, second.text
    assert [o["id"] for o in second.json()["items"]] != [o["id"] for o in first["items"]]
    assert len(second.json()["items"]) == 1

"""GET/PUT /v1/calendar/{year}: the packaged year, an admin's replacement, every bad input a 4xx."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from services.workflow.sla.calendar import CALENDAR
from tests.workflow.conftest import Issuer

YEAR_2027: dict[str, Any] = {
    "source": "国务院办公厅关于2027年部分节假日安排的通知 (test data)",
    "holidays": [
        {"name": "元旦", "start": "2027-01-01", "end": "2027-01-03"},
        {"name": "国庆节", "start": "2027-10-01", "end": "2027-10-07"},
    ],
    "working_weekends": ["2027-09-26", "2027-10-09"],
}


async def test_anyone_signed_in_reads_the_packaged_year(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    response = await client.get("/v1/calendar/2026", headers=issuer.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["origin"] == "packaged" and body["year"] == 2026
    assert {"name": "国庆节 National Day", "start": "2026-10-01", "end": "2026-10-07"} in body[
        "holidays"
    ]
    assert "2026-10-10" in body["working_weekends"]
    assert (await client.get("/v1/calendar/2026")).status_code == 401


async def test_a_year_without_data_is_a_404_problem(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    response = await client.get("/v1/calendar/2031", headers=issuer.headers())
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Monday to Friday" in response.json()["detail"]


async def test_a_platform_admin_sets_a_year_and_due_dates_follow(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    admin = issuer.headers(roles=["platform_admin"])
    assert CALENDAR.is_working_day(date(2027, 10, 1))  # unknown year: a Friday works
    response = await client.put("/v1/calendar/2027", json=YEAR_2027, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["origin"] == "admin"
    assert not CALENDAR.is_working_day(date(2027, 10, 1))
    assert CALENDAR.is_working_day(date(2027, 10, 9))  # a Saturday made a working day
    read = await client.get("/v1/calendar/2027", headers=issuer.headers())
    assert read.json()["working_weekends"] == ["2027-09-26", "2027-10-09"]
    # Replacing it again keeps one row; the packaged 2026 is untouched.
    again = {**YEAR_2027, "working_weekends": []}
    assert (await client.put("/v1/calendar/2027", json=again, headers=admin)).status_code == 200
    assert not CALENDAR.is_working_day(date(2027, 10, 9))
    assert not CALENDAR.is_working_day(date(2026, 10, 1))


@pytest.mark.parametrize("roles", [["citizen"], ["dept_admin"], ["officer"]])
async def test_only_platform_admins_set_the_calendar(
    client: httpx.AsyncClient, issuer: Issuer, roles: list[str]
) -> None:
    response = await client.put(
        "/v1/calendar/2027", json=YEAR_2027, headers=issuer.headers(roles=roles, org="dept-1")
    )
    assert response.status_code == 403
    assert CALENDAR.is_working_day(date(2027, 10, 1))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"working_weekends": ["2027-10-08"]}, "body"),  # a Friday cannot be "made up"
        ({"holidays": [{"name": "x", "start": "2027-10-07", "end": "2027-10-01"}]}, "body"),
        ({"holidays": [{"name": "x", "start": "2027-10-01", "end": "2027-12-30"}]}, "body"),
        ({"holidays": [{"name": "x", "start": "2027-10-01", "end": "2027-10-7"}]}, "end"),
        ({"holidays": [{"name": "x", "start": "2025-10-01", "end": "2025-10-07"}]}, "holidays.0"),
        ({"working_weekends": ["2030-01-05"]}, "working_weekends.0"),
        ({"holidays": [{"name": "国庆", "start": "2027-10-01", "end": "2027-10-09"}]}, "body"),
        ({"source": ""}, "source"),
        ({"source_url": "javascript:alert(1)"}, "source_url"),
        ({"surprise": 1}, "surprise"),
        ({"working_weekends": "2027-10-09"}, "working_weekends"),
    ],
)
async def test_bad_calendars_are_422_problems_naming_the_field(
    client: httpx.AsyncClient, issuer: Issuer, change: dict[str, Any], field: str
) -> None:
    response = await client.put(
        "/v1/calendar/2027",
        json={**YEAR_2027, **change},
        headers=issuer.headers(roles=["platform_admin"]),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    locations = [".".join(str(p) for p in e["loc"]) for e in response.json()["errors"]]
    assert any(field in loc for loc in locations), locations


@pytest.mark.parametrize("year", ["1999", "2101", "abc"])
async def test_years_out_of_range_are_422(
    client: httpx.AsyncClient, issuer: Issuer, year: str
) -> None:
    response = await client.get(f"/v1/calendar/{year}", headers=issuer.headers())
    assert response.status_code == 422

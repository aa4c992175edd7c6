"""Garbage in cursors, ids, versions and limits: 400/404/422 problems, never a 500 (on
PostgreSQL a huge integer must not overflow a column, a NUL must not reach a text column)."""

from __future__ import annotations

import pytest

from tests.hostile.expect import problem
from tests.hostile.parts import Running
from tests.identity.conftest import Issuer

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = {"roles": ["platform_admin"], "acr": "3"}
CITIZEN = {"roles": ["citizen"], "acr": "2"}

# part, list path (takes ?cursor= and ?limit=), caller
LISTS = [
    ("identity", "/v1/organisations", ADMIN),
    ("identity", "/v1/users", ADMIN),
    ("catalog", "/v1/items", CITIZEN),
    ("catalog", "/v1/bundles", CITIZEN),
    ("exchange", "/v1/grants", ADMIN),
    ("exchange", "/v1/open/datasets", CITIZEN),
    ("exchange", "/v1/ledger/entries", ADMIN),
    ("workflow", "/v1/applications", CITIZEN),
    ("workflow", "/v1/webhooks", {"roles": ["dept_admin"], "org": "a" * 32, "acr": "3"}),
    ("evaluation", "/v1/reviews", ADMIN),
    ("evaluation", "/v1/cases", ADMIN),
    ("gateway", "/v1/applications", ADMIN),
]
# part, path with {} where the id goes, caller
LOOKUPS = [
    ("identity", "/v1/organisations/{}", ADMIN),
    ("identity", "/v1/users/{}", ADMIN),
    ("catalog", "/v1/items/{}", CITIZEN),
    ("catalog", "/v1/items/{}/versions", CITIZEN),
    ("catalog", "/v1/datasets/{}", ADMIN),
    ("exchange", "/v1/grants/{}", ADMIN),
    ("exchange", "/v1/open/datasets/{}", CITIZEN),
    ("workflow", "/v1/applications/{}", CITIZEN),
    ("workflow", "/v1/tasks/{}", {"roles": ["officer"], "org": "a" * 32, "acr": "3"}),
    ("evaluation", "/v1/reviews/{}", ADMIN),
    ("evaluation", "/v1/cases/{}", ADMIN),
    ("gateway", "/v1/plans/{}", ADMIN),
]
# part, path with {} where a number goes (an integer path parameter), caller
NUMBERS = [
    ("catalog", "/v1/items/" + "a" * 32 + "/versions/{}", CITIZEN),
    ("catalog", "/v1/bundles/" + "a" * 32 + "/versions/{}", CITIZEN),
    ("catalog", "/v1/datasets/" + "a" * 32 + "/versions/{}", ADMIN),
    ("workflow", "/v1/calendar/{}", ADMIN),
    ("evaluation", "/v1/index-systems/{}", ADMIN),
    ("exchange", "/v1/ledger/entries/{}", ADMIN),
]
CURSORS = {
    "empty": "",
    "null": "null",
    "minus-one": "-1",
    "huge-int": "9" * 400,
    "sql": "' OR '1'='1' --",
    "traversal": "../../etc/passwd",
    "nul": "\x00",
    "base64-json-broken": "eyJ4Ijp9",
    "base64-json-float": "eyJpZCI6IDFlMzA5fQ",  # {"id": 1e309}
    "base64-deep": "W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb",
    "long": "A" * 10_000,
    "emoji": "😀",
    # Well-formed cursors (base64 of JSON) holding positions no list gives out:
    "base64-nul-string": "ImFcdTAwMDAi",  # "a\u0000": NUL must not reach PostgreSQL
    "base64-over-int64": "MTg0NDY3NDQwNzM3MDk1NTE2MTY",  # 2**64: no BIGINT holds it
    "base64-negative": "LTU",  # -5
    "base64-pair-of-junk": "W3sieCI6IDF9LCBbMV1d",  # [{"x": 1}, [1]]
    "base64-pair-of-text": "WyJ4IiwgInkiXQ",  # ["x", "y"]: no time first
}
IDS = {
    "huge-int": "9" * 30,
    "minus-one": "-1",
    "sql": "1' OR '1'='1",
    "encoded-traversal": "..%2F..%2Fetc%2Fpasswd",
    "nul": "%00",
    "long": "a" * 5_000,
    "emoji": "%F0%9F%98%80",
    "float": "1e999",
}
NUMBERS_IN_PATHS = {
    "over-int64": str(2**63),
    "over-int32": str(2**31),
    "huge": "9" * 40,
    "minus": "-9223372036854775809",
    "float": "1.5",
    "nan": "NaN",
}
LIMITS = {"huge": "9" * 30, "negative": "-1", "zero": "0", "text": "many", "over-max": "201"}


def _id(value: tuple[str, str, dict[str, object]]) -> str:
    return f"{value[0]}-{value[1]}"


@pytest.mark.parametrize("target", LISTS, ids=_id)
@pytest.mark.parametrize("cursor", CURSORS)
async def test_a_garbage_cursor_is_a_400_or_422_problem(
    parts: dict[str, Running], issuer: Issuer, target: tuple[str, str, dict[str, object]],
    cursor: str,
) -> None:  # fmt: skip
    part, path, caller = target
    response = await parts[part].http.get(
        path, params={"cursor": CURSORS[cursor]}, headers=issuer.headers(**caller)
    )
    if cursor == "empty" and response.status_code == 200:
        return  # an empty cursor may mean "the first page"
    problem(response, 400, 422)


@pytest.mark.parametrize("target", LISTS, ids=_id)
@pytest.mark.parametrize("limit", LIMITS)
async def test_a_limit_out_of_range_is_a_422_problem(
    parts: dict[str, Running], issuer: Issuer, target: tuple[str, str, dict[str, object]],
    limit: str,
) -> None:  # fmt: skip
    part, path, caller = target
    response = await parts[part].http.get(
        path, params={"limit": LIMITS[limit]}, headers=issuer.headers(**caller)
    )
    problem(response, 400, 422)


@pytest.mark.parametrize("target", LOOKUPS, ids=_id)
@pytest.mark.parametrize("value", IDS)
async def test_a_garbage_id_is_a_404_or_422_problem(
    parts: dict[str, Running], issuer: Issuer, target: tuple[str, str, dict[str, object]],
    value: str,
) -> None:  # fmt: skip
    part, path, caller = target
    response = await parts[part].http.get(path.format(IDS[value]), headers=issuer.headers(**caller))
    problem(response, 400, 404, 422)


@pytest.mark.parametrize("target", NUMBERS, ids=_id)
@pytest.mark.parametrize("value", NUMBERS_IN_PATHS)
async def test_a_number_no_column_holds_is_a_404_or_422_problem(
    parts: dict[str, Running], issuer: Issuer, target: tuple[str, str, dict[str, object]],
    value: str,
) -> None:  # fmt: skip
    part, path, caller = target
    response = await parts[part].http.get(
        path.format(NUMBERS_IN_PATHS[value]), headers=issuer.headers(**caller)
    )
    problem(response, 400, 404, 422)

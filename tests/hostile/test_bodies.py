"""Hostile request bodies at every part's create endpoint: too large, too deep, malformed, in
the wrong content type or encoding. Each is a 4xx problem; none reaches a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.hostile.expect import problem
from tests.hostile.parts import MAX_BODY_BYTES, Running
from tests.identity.conftest import Issuer

# On SQLite only (the module's `parts` on one backend): each body is refused before any database
# is written, by the same code whatever the backend. Hostile data that does reach a database
# (test_payloads, test_identifiers, the fuzz) runs on PostgreSQL too.
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.parametrize("parts", ["sqlite"], indirect=True),
]


@dataclass(frozen=True)
class Write:
    """A create endpoint of a part and who may call it."""

    part: str
    path: str
    caller: dict[str, Any]


WRITES = [
    Write("identity", "/v1/organisations", {"roles": ["platform_admin"], "acr": "3"}),
    Write("catalog", "/v1/datasets", {"roles": ["platform_admin"], "acr": "3"}),
    Write("exchange", "/v1/grants", {"roles": ["dept_admin"], "org": "a" * 32, "acr": "3"}),
    Write("workflow", "/v1/applications", {"roles": ["citizen"], "acr": "2"}),
    Write("evaluation", "/v1/reviews", {"roles": ["citizen"], "acr": "2"}),
    Write("gateway", "/v1/plans", {"roles": ["platform_admin"], "acr": "3"}),
]
DEPTH = 10_000
JSON = "application/json"
# name -> (body, content type, the statuses that are right for it)
BODIES: dict[str, tuple[bytes, str, tuple[int, ...]]] = {
    "deep-array": (b"[" * DEPTH + b"]" * DEPTH, JSON, (400, 422)),
    "deep-object": (b'{"a":' * DEPTH + b"1" + b"}" * DEPTH, JSON, (400, 422)),
    "malformed": (b'{"name": "x",', JSON, (400, 422)),
    "not-utf8": (b'{"name": "\xff\xfe\xfd"}', JSON, (400, 422)),
    "utf16": ('{"name": "x"}'.encode("utf-16"), JSON, (400, 422)),
    "nul-bytes": (b'{"name": "\x00"}', JSON, (400, 422)),
    "empty": (b"", JSON, (400, 422)),
    "json-null": (b"null", JSON, (400, 422)),
    "json-array": (b"[]", JSON, (400, 422)),
    "huge-number": (b'{"name": ' + b"9" * 10_000 + b"}", JSON, (400, 422)),
    "text-plain": (b'{"name": "x"}', "text/plain", (400, 415, 422)),
    "xml": (b"<organisation><name>x</name></organisation>", "application/xml", (400, 415, 422)),
    "form": (b"name=x&code=y", "application/x-www-form-urlencoded", (400, 415, 422)),
    "multipart": (
        b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        (400, 415, 422),
    ),
    "no-content-type": (b'{"name": "x"}', "", (400, 415, 422)),
}


def _headers(issuer: Issuer, write: Write, content_type: str) -> dict[str, str]:
    headers = issuer.headers(**write.caller)
    if content_type:
        headers["Content-Type"] = content_type
    return headers


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.part)
@pytest.mark.parametrize("case", BODIES)
async def test_a_hostile_body_is_a_4xx_problem(
    parts: dict[str, Running], issuer: Issuer, write: Write, case: str
) -> None:
    body, content_type, statuses = BODIES[case]
    response = await parts[write.part].http.post(
        write.path, content=body, headers=_headers(issuer, write, content_type)
    )
    problem(response, *statuses)


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.part)
async def test_a_body_over_the_limit_is_413_whether_its_length_is_declared_or_not(
    parts: dict[str, Running], issuer: Issuer, write: Write
) -> None:
    http = parts[write.part].http
    big = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    declared = await http.post(write.path, content=big, headers=_headers(issuer, write, JSON))
    assert problem(declared, 413)["type"].endswith("payload-too-large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for start in range(0, len(big), 16 * 1024):
            yield big[start : start + 16 * 1024]

    streamed = await http.post(write.path, content=chunks(), headers=_headers(issuer, write, JSON))
    assert "content-length" not in streamed.request.headers
    assert problem(streamed, 413)["type"].endswith("payload-too-large")

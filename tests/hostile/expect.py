"""What every refusal must look like: an RFC 9457 problem with one of the expected statuses."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The problem document of ``response``, asserting its status is one of ``statuses``."""
    request = f"{response.request.method} {response.request.url.raw_path.decode()[:200]}"
    assert response.status_code in statuses, (
        f"{request}: {response.status_code}, expected {statuses}: {response.text[:500]}"
    )
    assert response.headers.get("content-type", "").split(";")[0] == PROBLEM, (
        f"{request}: {response.headers.get('content-type')!r}: {response.text[:300]}"
    )
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status"} <= body.keys(), body
    assert body["status"] == response.status_code, body
    return body

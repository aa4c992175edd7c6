"""Each part's world for the matrix: what department A, the citizen and enterprise E own there,
made through the part's own API (or fed the events another part would publish), and the
factories of the targets the rows aim at.

A target is a dict: the path parameters of a row, plus anything its body needs. A target made
``fresh`` is made again for every caller (the rows that use their target up: delete, revoke).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from tests.authz.callers import ENT_E, ENT_F, Ids, headers
from tests.identity.conftest import Issuer

Target = dict[str, Any]


def in_days(days: float) -> str:
    """An RFC 3339 time ``days`` from now."""
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


class World:
    """A started part, its callers and its targets."""

    part = ""

    def __init__(self, app: FastAPI, http: httpx.AsyncClient, issuer: Issuer) -> None:
        self.app = app
        self.http = http
        self.issuer = issuer
        self.ids = Ids()
        self._made: dict[str, Target] = {}

    def as_(self, caller: str) -> dict[str, str]:
        """``caller``'s Authorization header in this world."""
        return headers(self.issuer, self.ids, caller)

    async def seed(self) -> None:
        """Make what every row's cached targets share."""

    async def target(self, name: str, *, fresh: bool = False) -> Target:
        """The target ``name`` (made once, or anew when ``fresh``)."""
        if not name:
            return {}
        if fresh or name not in self._made:
            factory: Callable[[], Awaitable[Target]] = getattr(self, f"make_{name}")
            made = await factory()
            if fresh:
                return made
            self._made[name] = made
        return self._made[name]

    async def call(
        self, method: str, path: str, caller: str, expect: int = 200, **kwargs: Any
    ) -> Any:
        """A set-up request that must succeed; its JSON."""
        headers = {**self.as_(caller), **kwargs.pop("headers", {})}
        response = await self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


__all__ = ["ENT_E", "ENT_F", "Target", "World", "in_days", "unique"]

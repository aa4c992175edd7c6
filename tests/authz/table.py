"""The shape of the authorisation matrix: one row per endpoint (and target), what each caller
gets. The rows themselves are in ``matrix.py``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.authz.callers import ANONYMOUS, CALLERS, SIGNED_IN

OK = "ok"
# What a caller may get: allowed (any 2xx/3xx, or a 409 the resource's state causes), or a
# refusal: 401 (no or bad token), 403 (seen but not permitted), 404 (hidden: as if absent).
Expected = str | int

Body = Callable[[Any], Any]


def callers(spec: str) -> frozenset[str]:
    """``"citizen:own platform_admin"``; ``*`` every signed-in caller, ``public`` everyone;
    ``!caller`` takes one out again."""
    found: set[str] = set()
    for word in spec.split():
        if word == "*":
            found |= SIGNED_IN
        elif word == "public":
            found |= set(CALLERS)
        elif word.startswith("!"):
            found.discard(word[1:])
        else:
            assert word in CALLERS, f"unknown caller {word!r}"
            found.add(word)
    return frozenset(found)


@dataclass(frozen=True)
class Row:
    """One endpoint aimed at one target, and the answer each caller must get.

    ``ok`` callers are allowed, ``hidden`` ones get 404, the anonymous caller otherwise 401 and
    every other caller 403. ``target`` names the world's factory of the path parameters (and
    what else the body needs); ``fresh`` makes a new target per caller (for writes that use the
    target up: delete, revoke). ``note`` says why a cell is what it is, or which defect it shows.
    """

    part: str
    method: str
    path: str
    ok: str = ""
    hidden: str = ""
    target: str = ""
    fresh: bool = False
    body: Body | None = None
    query: Mapping[str, str] | Body = field(default_factory=dict)
    form: Body | None = None
    content: bytes | None = None
    content_type: str | None = None
    stream: bool = False
    accepted: tuple[int, ...] = ()
    anonymous: int = 401
    refused: int = 403
    note: str = ""

    @property
    def operation(self) -> tuple[str, str, str]:
        return (self.part, self.method, self.path)

    @property
    def id(self) -> str:
        return f"{self.part}-{self.method} {self.path}" + (f"-{self.target}" if self.target else "")

    def expected(self, caller: str) -> Expected:
        if caller in callers(self.ok):
            return OK
        if caller in callers(self.hidden):
            return 404
        return self.anonymous if caller == ANONYMOUS else self.refused

"""Which limits apply to a request, and the RateLimit headers that describe them."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from gateway.edge.limits import Decision, Limit, counter_name

MINUTE_S = 60
DAY_S = 86_400


def minute_limit(quantity: int) -> Limit:
    """``quantity`` requests per minute."""
    return Limit("minute", quantity, MINUTE_S)


def day_limit(quantity: int) -> Limit:
    """``quantity`` requests per UTC day (a plan's quota)."""
    return Limit("day", quantity, DAY_S)


def key_counter(key_id: str) -> str:
    """The counter name of an API key."""
    return f"key.{key_id}"


def subject_counter(subject: str) -> str:
    """The counter name of an access token's subject."""
    return counter_name("sub", subject)


def ip_counter(address: str) -> str:
    """The counter name of a client address (anonymous calls)."""
    return counter_name("ip", address)


@functools.lru_cache(maxsize=4096)
def _policy_field(limits: tuple[Limit, ...]) -> bytes:
    return ", ".join(f'"{x.policy}";q={x.quantity};w={x.window_s}' for x in limits).encode()


def ratelimit_headers(decisions: Sequence[Decision]) -> list[tuple[bytes, bytes]]:
    """``RateLimit-Policy`` (every limit applied) and ``RateLimit`` (the closest to running out),
    as in draft-ietf-httpapi-ratelimit-headers (structured fields: q quota, w window seconds,
    r remaining, t seconds to reset)."""
    if not decisions:
        return []
    tightest = decisions[0]
    for decision in decisions[1:]:
        if (decision.allowed, decision.remaining) < (tightest.allowed, tightest.remaining):
            tightest = decision
    current = f'"{tightest.limit.policy}";r={tightest.remaining};t={tightest.reset_s}'
    return [
        (b"ratelimit-policy", _policy_field(tuple(d.limit for d in decisions))),
        (b"ratelimit", current.encode()),
    ]

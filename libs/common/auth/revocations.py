"""Revoked access tokens denied in every process of every part, from identity's events.

Identity publishes ``pingtai.identity.access_token.revoked`` when it revokes access tokens before
their expiry. Each process's verifier keeps its denylist in memory, so each process must see each
event: a broadcast (not a durable consumer, which would give each event to one replica), replaying
the last ``auth_revocation_replay_s`` seconds so a process that starts late still knows them.
``create_service_app`` adds it to every part that has an ``EventBus``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import ClassVar

from fastapi import FastAPI
from prometheus_client import Counter

from libs.common.auth.dependencies import token_verifier
from libs.common.events import Broadcast, CloudEvent, EventData

REVOKED_EVENT = "pingtai.identity.access_token.revoked"
BROADCAST_NAME = "auth-revocations"

REVOCATIONS_APPLIED = Counter(
    "pingtai_auth_revocations_applied_total",
    "Revoked access-token ids this process added to its verifier's denylist "
    "(a replayed one it already denied, or one expired anyway, is not counted).",
    ["part"],
)


class AccessTokensRevoked(EventData):
    """Our copy of identity's event (services/identity/oauth/tokens/events.py), as we read it."""

    event_type: ClassVar[str] = REVOKED_EVENT

    jtis: list[str]
    # The latest expiry among the tokens: none of them is valid after it anyway.
    until: datetime


def revocation_broadcast(app: FastAPI) -> Broadcast:
    """A broadcast that denies every revoked access token in ``app``'s verifier at once."""
    part: str = app.state.part
    replay_s: float = app.state.settings.auth_revocation_replay_s
    applied = REVOCATIONS_APPLIED.labels(part)

    async def deny_revoked(event: CloudEvent) -> None:
        revoked = event.data_as(AccessTokensRevoked)
        until = revoked.until if revoked.until.tzinfo else revoked.until.replace(tzinfo=UTC)
        verifier = token_verifier(app)
        if until.timestamp() + verifier.leeway_s <= time.time():
            return  # a replay of tokens that have expired since: refused anyway
        for jti in revoked.jtis:
            if not verifier.is_denied(jti):
                applied.inc()
            verifier.deny(jti, until)

    return Broadcast(
        name=BROADCAST_NAME, subjects=[REVOKED_EVENT], handler=deny_revoked, replay_s=replay_s
    )

"""Identity's revocation event is what every part's verifier reads (libs.common.auth)."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.auth import revocations
from libs.common.events import CloudEvent, new_event
from services.identity.oauth.tokens.events import AccessTokensRevoked


def test_every_part_reads_identity_s_revocation_event() -> None:
    until = datetime(2026, 11, 28, 9, 35, tzinfo=UTC)
    published = new_event(
        AccessTokensRevoked(jtis=["jti-1", "jti-2"], until=until, reason="refresh_token_reuse"),
        subject="jti-1",
    )

    read = CloudEvent.from_json(published.to_json()).data_as(revocations.AccessTokensRevoked)

    assert published.type == revocations.REVOKED_EVENT
    assert read.jtis == ["jti-1", "jti-2"]
    assert read.until == until

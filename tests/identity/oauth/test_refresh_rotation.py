"""Refresh-token rotation in detail: the roles a rotated token carries, accounts that changed,
tokens of another client, expired tokens, and two presentations of one token at once."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import delete, select, update

from services.identity.ids import utcnow
from services.identity.oauth.derived_keys import new_opaque_token, token_digest
from services.identity.oauth.tokens import repository as tokens_repository
from services.identity.oauth.tokens.models import RefreshToken, RevokedAccessToken
from services.identity.organisations.models import Membership
from services.identity.people.models import User
from tests.identity.oauth.conftest import Provider


async def issue_refresh_token(
    provider: Provider,
    person: str,
    *,
    org: str | None = None,
    client_id: str = "webapp",
    expires_in: timedelta = timedelta(days=1),
) -> tuple[str, str]:
    """A live refresh token of a new family, as a sign-in would leave it: (token, family)."""
    token, family = new_opaque_token(), secrets.token_hex(16)
    now = utcnow()
    async with provider.database.sessionmaker() as session:
        session.add(
            RefreshToken(
                token_hash=token_digest(token),
                family_id=family,
                client_id=client_id,
                user_id=provider.people[person].id,
                org_id=provider.orgs[org] if org else None,
                scope="openid profile pingtai",
                auth_time=now,
                amr=["pwd"],
                access_jti=secrets.token_hex(16),
                access_expires_at=now + timedelta(minutes=5),
                generation=0,
                created_at=now,
                expires_at=now + expires_in,
            )
        )
        await session.commit()
    return token, family


async def refresh(provider: Provider, token: str, *, client: str = "webapp") -> dict[str, Any]:
    async with provider.http() as http:
        answer = await http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=(client, provider.secrets[client]),
        )
    body: dict[str, Any] = answer.json()
    assert answer.status_code == (200 if "access_token" in body else 400), body
    return body


async def family_state(provider: Provider, family: str) -> list[tuple[int, bool, bool]]:
    """(generation, used, revoked) of every token of a family, oldest first."""
    async with provider.database.sessionmaker() as session:
        rows = await session.execute(
            select(RefreshToken.generation, RefreshToken.used_at, RefreshToken.revoked_at)
            .where(RefreshToken.family_id == family)
            .order_by(RefreshToken.generation)
        )
        return [(g, used is not None, revoked is not None) for g, used, revoked in rows]


async def denied(provider: Provider, jti: str) -> bool:
    async with provider.database.sessionmaker() as session:
        return await session.get(RevokedAccessToken, jti) is not None


def claims_of(body: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(body["access_token"], options={"verify_signature": False})
    return claims


async def test_a_rotated_token_carries_the_roles_held_now(provider: Provider) -> None:
    carol = provider.people["carol"]
    token, family = await issue_refresh_token(provider, "carol", org="amr")
    first = await refresh(provider, token)
    claims = claims_of(first)
    assert claims["org"] == provider.orgs["amr"]
    assert claims["roles"] == ["citizen", "dept_admin"]
    assert claims["acr"] == "1" and claims["sub"] == carol.id
    # Raised assurance and a new role in the organisation reach the next rotation.
    async with provider.database.sessionmaker() as session:
        await session.execute(update(User).where(User.id == carol.id).values(acr=3))
        session.add(Membership(user_id=carol.id, org_id=provider.orgs["amr"], role="officer"))
        # A role elsewhere does not ride along.
        session.add(Membership(user_id=carol.id, org_id=provider.orgs["hrss"], role="auditor"))
        await session.commit()
    second = await refresh(provider, first["refresh_token"])
    claims = claims_of(second)
    assert claims["roles"] == ["citizen", "dept_admin", "officer"]
    assert claims["acr"] == "3"
    assert await family_state(provider, family) == [
        (0, True, False),
        (1, True, False),
        (2, False, False),
    ]


async def test_leaving_the_organisation_ends_the_family(provider: Provider) -> None:
    carol = provider.people["carol"]
    token, family = await issue_refresh_token(provider, "carol", org="amr")
    first = await refresh(provider, token)
    async with provider.database.sessionmaker() as session:
        await session.execute(
            delete(Membership).where(
                Membership.user_id == carol.id, Membership.org_id == provider.orgs["amr"]
            )
        )
        await session.commit()
    refused = await refresh(provider, first["refresh_token"])
    assert refused["error"] == "invalid_grant"
    assert "no longer active" in refused["error_description"]
    # The whole family is revoked, and the access token it issued last is denied.
    assert [revoked for _, _, revoked in await family_state(provider, family)] == [True, True]
    assert await denied(provider, claims_of(first)["jti"])
    # Tokens without an organisation (platform-wide roles) are not affected.
    citizen, _ = await issue_refresh_token(provider, "carol")
    assert claims_of(await refresh(provider, citizen))["roles"] == ["citizen"]


async def test_a_suspended_account_cannot_refresh(provider: Provider) -> None:
    token, family = await issue_refresh_token(provider, "alice")
    async with provider.database.sessionmaker() as session:
        await session.execute(
            update(User).where(User.id == provider.people["alice"].id).values(status="suspended")
        )
        await session.commit()
    assert (await refresh(provider, token))["error"] == "invalid_grant"
    assert await family_state(provider, family) == [(0, False, True)]


async def test_foreign_and_expired_tokens_are_refused_without_consuming(
    provider: Provider,
) -> None:
    token, family = await issue_refresh_token(provider, "alice")
    # The mobile app is a public client: present webapp's token as mobile.
    async with provider.http() as http:
        answer = await http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": token, "client_id": "mobile"},
        )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert await family_state(provider, family) == [(0, False, False)]
    assert "access_token" in await refresh(provider, token)

    expired, expired_family = await issue_refresh_token(
        provider, "alice", expires_in=timedelta(seconds=-1)
    )
    assert (await refresh(provider, expired))["error"] == "invalid_grant"
    assert await family_state(provider, expired_family) == [(0, False, False)]
    unknown = await refresh(provider, new_opaque_token())
    assert unknown["error"] == "invalid_grant"


async def test_one_of_simultaneous_presentations_wins_and_the_family_falls(
    provider: Provider,
) -> None:
    token, family = await issue_refresh_token(provider, "alice")
    answers = await asyncio.gather(*(refresh(provider, token) for _ in range(8)))
    winners = [answer for answer in answers if "access_token" in answer]
    assert len(winners) == 1
    assert all(answer["error"] == "invalid_grant" for answer in answers if answer not in winners)
    # The others were reuses: the winner's successor is revoked with the family.
    assert (await refresh(provider, winners[0]["refresh_token"]))["error"] == "invalid_grant"
    assert all(revoked for _, _, revoked in await family_state(provider, family))
    assert await denied(provider, claims_of(winners[0])["jti"])


async def test_a_token_consumed_between_read_and_write_counts_as_reused(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the conditional consume closes: the read saw the token live, another request
    rotated it before this one's write. Made deterministic by replaying a stale read."""
    token, family = await issue_refresh_token(provider, "alice")
    async with provider.database.sessionmaker() as session:
        stale = await tokens_repository.rotation(session, token_hash=token_digest(token))
    assert stale is not None and stale.used_at is None
    winner = await refresh(provider, token)

    async def stale_read(*_: Any, **__: Any) -> tokens_repository.Rotation:
        return stale

    monkeypatch.setattr(tokens_repository, "rotation", stale_read)
    late = await refresh(provider, token)
    monkeypatch.undo()
    assert late["error"] == "invalid_grant"
    assert "already used" in late["error_description"]
    assert await family_state(provider, family) == [(0, True, True), (1, False, True)]
    assert await denied(provider, claims_of(winner)["jti"])
    assert "pingtai.identity.refresh_token.reused" in await provider.outbox_types()

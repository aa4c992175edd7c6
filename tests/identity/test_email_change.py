"""A new e-mail address is used only once the code sent to it comes back, and asking for an
address tells nothing about whether another account uses it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from services.identity.people.models import EmailChange
from tests.identity.conftest import Issuer
from tests.identity.test_people_and_organisations import outbox_types, register_and_find


class RecordingSender:
    """Stands in for the e-mail gateway: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_code(self, *, channel: str, address: str, code: str, purpose: str) -> None:
        assert (channel, purpose) == ("email", "email_change")
        self.sent.append((address, code))


@pytest.fixture
def sender(identity_app: FastAPI) -> RecordingSender:
    recording = RecordingSender()
    identity_app.state.code_sender = recording
    return recording


async def ask(
    client: httpx.AsyncClient, headers: dict[str, str], email: str | None
) -> httpx.Response:
    return await client.patch("/v1/me", json={"email": email}, headers=headers)


async def confirm(client: httpx.AsyncClient, headers: dict[str, str], code: str) -> httpx.Response:
    return await client.post("/v1/me/email/confirmation", json={"code": code}, headers=headers)


async def test_a_new_address_waits_for_its_code(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer, sender: RecordingSender
) -> None:
    alice = issuer.headers(sub=await register_and_find(client, identity_app, 21))
    asked = await ask(client, alice, "Alice@Example.cn")
    assert asked.status_code == 200, asked.text
    assert (asked.json()["email"], asked.json()["pending_email"]) == (None, "alice@example.cn")
    assert (await client.get("/v1/me", headers=alice)).json()["pending_email"] == "alice@example.cn"
    [(address, code)] = sender.sent
    assert address == "alice@example.cn" and len(code) == 6
    wrong = "0" * 6 if code != "0" * 6 else "1" * 6
    refused = await confirm(client, alice, wrong)
    assert refused.status_code == 422 and refused.json()["errors"][0]["loc"] == ["body", "code"]
    confirmed = await confirm(client, alice, code)
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["email"], confirmed.json()["pending_email"]) == (
        "alice@example.cn",
        None,
    )
    # A code works once.
    assert (await confirm(client, alice, code)).status_code == 422
    types = await outbox_types(identity_app)
    assert "pingtai.identity.person.email_change_requested" in types
    assert types[-1] == "pingtai.identity.person.email_changed"
    # Removing the address needs no code.
    removed = await ask(client, alice, None)
    assert (removed.json()["email"], removed.json()["pending_email"]) == (None, None)


async def test_asking_for_a_used_address_looks_the_same_and_cannot_complete(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer, sender: RecordingSender
) -> None:
    """The finding this answers: PATCH /me answered 409 for an address another account used."""
    holder = issuer.headers(sub=await register_and_find(client, identity_app, 22))
    await ask(client, holder, "taken@example.cn")
    await confirm(client, holder, sender.sent[0][1])
    sender.sent.clear()

    asker_id = await register_and_find(client, identity_app, 23)
    asker = issuer.headers(sub=asker_id)
    taken = await ask(client, asker, "taken@example.cn")
    free = await ask(
        client,
        issuer.headers(sub=await register_and_find(client, identity_app, 24)),
        "free@example.cn",
    )
    # The same status and the same shape of answer for a used and a free address.
    assert taken.status_code == free.status_code == 200
    assert taken.json()["pending_email"] == "taken@example.cn"
    assert taken.json().keys() == free.json().keys()
    # Only the free address got a code; the holder of the used one was told.
    assert [address for address, _ in sender.sent] == ["free@example.cn"]
    assert "pingtai.identity.person.email_change_conflict" in await outbox_types(identity_app)
    # No code can complete it.
    for guess in ("000000", "123456"):
        assert (await confirm(client, asker, guess)).status_code == 422
    me = (await client.get("/v1/me", headers=asker)).json()
    assert me["email"] is None


async def test_tries_are_limited_and_codes_expire(
    client: httpx.AsyncClient, identity_app: FastAPI, issuer: Issuer, sender: RecordingSender
) -> None:
    person = await register_and_find(client, identity_app, 25)
    headers = issuer.headers(sub=person)
    await ask(client, headers, "tries@example.cn")
    code = sender.sent[-1][1]
    wrong = "0" * 6 if code != "0" * 6 else "1" * 6
    for _ in range(5):
        assert (await confirm(client, headers, wrong)).status_code == 422
    # Five wrong tries were counted (they committed although refused): the right code is late.
    assert (await confirm(client, headers, code)).status_code == 422

    await ask(client, headers, "later@example.cn")  # a new request starts afresh
    code = sender.sent[-1][1]
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(EmailChange)
            .where(EmailChange.user_id == person)
            .values(expires_at=EmailChange.created_at)
        )
        await session.commit()
    assert (await confirm(client, headers, code)).status_code == 422
    for bad in ({"code": "12345"}, {"code": "abcdef"}, {"code": 123456}, {}):
        answer = await client.post("/v1/me/email/confirmation", json=bad, headers=headers)
        assert answer.status_code == 422
    assert (
        await client.post("/v1/me/email/confirmation", json={"code": "123456"})
    ).status_code == 401

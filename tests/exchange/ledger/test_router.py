"""The ledger's API in the exchange app: keys for anyone; verification and lists for auditors."""

from __future__ import annotations

import base64

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from sqlalchemy import text

from services.exchange.ledger import Ledger
from services.exchange.ledger.signing import checkpoint_message
from tests.exchange.conftest import Issuer
from tests.exchange.ledger.conftest import record


def ledger_of(app: FastAPI) -> Ledger:
    ledger: Ledger = app.state.ledger
    return ledger


async def test_the_app_has_a_running_ledger(exchange_app: FastAPI) -> None:
    receipt = await ledger_of(exchange_app).append(record(1))
    assert receipt.position == 1


async def test_keys_are_public_and_verify_a_checkpoint_offline(
    client: httpx.AsyncClient, exchange_app: FastAPI, issuer: Issuer
) -> None:
    ledger = ledger_of(exchange_app)
    await ledger.append_many([record(n) for n in range(3)])
    await ledger.checkpoint()
    response = await client.get("/v1/ledger/keys")
    assert response.status_code == 200, response.text
    (key,) = response.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["current"]) == ("OKP", "Ed25519", "EdDSA", True)
    assert key["kid"] == ledger.signer.key_id
    # An auditor with only the JWK and a checkpoint checks the signature.
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=="))
    pem = serialization.load_pem_public_key(key["pem"].encode())
    assert isinstance(pem, Ed25519PublicKey)
    checkpoints = await client.get(
        "/v1/ledger/checkpoints", headers=issuer.headers(roles=["auditor"])
    )
    assert checkpoints.status_code == 200, checkpoints.text
    latest = checkpoints.json()["items"][0]
    assert latest["position"] == 3
    public.verify(
        base64.urlsafe_b64decode(latest["signature"] + "=="),
        checkpoint_message(
            position=latest["position"],
            entry_hash=latest["entry_hash"],
            signed_at_us=latest["signed_at_us"],
            kid=latest["key_id"],
        ),
    )


async def test_verification_is_for_auditors_and_platform_admins(
    client: httpx.AsyncClient, exchange_app: FastAPI, issuer: Issuer
) -> None:
    await ledger_of(exchange_app).append_many([record(n) for n in range(5)])
    anonymous = await client.get("/v1/ledger/verification")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    officer = await client.get(
        "/v1/ledger/verification", headers=issuer.headers(roles=["officer"], org="org-1")
    )
    assert officer.status_code == 403
    assert officer.headers["content-type"].startswith("application/problem+json")
    for role in ("auditor", "platform_admin"):
        response = await client.get("/v1/ledger/verification", headers=issuer.headers(roles=[role]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["valid"] is True and body["entries"] == 5 and body["problem"] is None


async def test_verification_reports_tampering(
    client: httpx.AsyncClient, exchange_app: FastAPI, issuer: Issuer
) -> None:
    await ledger_of(exchange_app).append_many([record(n) for n in range(5)])
    async with exchange_app.state.database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE exchange_ledger_entry SET dataset_id = 'other' WHERE position = 4")
        )
    response = await client.get(
        "/v1/ledger/verification", headers=issuer.headers(roles=["auditor"])
    )
    body = response.json()
    assert body["valid"] is False
    assert (body["problem"]["kind"], body["problem"]["position"]) == ("altered", 4)


async def test_entries_filtered_and_paged(
    client: httpx.AsyncClient, exchange_app: FastAPI, issuer: Issuer
) -> None:
    ledger = ledger_of(exchange_app)
    await ledger.append_many([record(n) for n in range(5)])
    await ledger.append_many(
        [record(n, dataset_id="ds-tax", actor_org_id="org-tax") for n in range(5, 8)]
    )
    headers = issuer.headers(roles=["auditor"])
    first = await client.get("/v1/ledger/entries?limit=2", headers=headers)
    assert first.status_code == 200, first.text
    assert [e["position"] for e in first.json()["items"]] == [8, 7]
    cursor = first.json()["next_cursor"]
    second = await client.get(f"/v1/ledger/entries?limit=2&cursor={cursor}", headers=headers)
    assert [e["position"] for e in second.json()["items"]] == [6, 5]
    tax = await client.get("/v1/ledger/entries?dataset_id=ds-tax", headers=headers)
    assert [e["position"] for e in tax.json()["items"]] == [8, 7, 6]
    assert tax.json()["items"][0]["fields"] == ["name", "address"]
    org = await client.get("/v1/ledger/entries?actor_org_id=org-civil-affairs", headers=headers)
    assert len(org.json()["items"]) == 5
    later = await client.get("/v1/ledger/entries?since=2999-01-01T00:00:00Z", headers=headers)
    assert later.json()["items"] == []
    earlier = await client.get(
        "/v1/ledger/entries?until=2999-01-01T00:00:00%2B08:00", headers=headers
    )
    assert len(earlier.json()["items"]) == 8


async def test_entries_refuse_bad_input_with_problems(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    headers = issuer.headers(roles=["auditor"])
    for query, status in (
        ("cursor=not-a-cursor", 400),
        ("cursor=Im5vIg", 400),  # a JSON string, not a position
        ("since=2026-01-01T00:00:00", 422),  # no time zone
        ("since=yesterday", 422),
        ("limit=0", 422),
    ):
        response = await client.get(f"/v1/ledger/entries?{query}", headers=headers)
        assert response.status_code == status, (query, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    citizen = await client.get("/v1/ledger/entries", headers=issuer.headers(roles=["citizen"]))
    assert citizen.status_code == 403

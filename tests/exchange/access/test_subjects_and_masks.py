"""Subject references (libs.common.subjects), identity's events carrying them into exchange's
read copy, and the masks."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from datetime import date
from hashlib import sha256
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import FastAPI
from sqlalchemy import select

from libs.common.auth import JwksCache, TokenVerifier
from libs.common.events import CloudEvent
from libs.common.events.tables import TABLES
from libs.common.migrations import migrate
from libs.common.subjects import SubjectRefs
from services.exchange.access import masking
from services.exchange.access.models import OrganisationSubject, PersonSubject
from services.exchange.access.subjects import apply_organisation, apply_person
from services.exchange.datasets.models import DatasetField
from services.identity.app import create_app as create_identity_app
from services.identity.identifiers import make_credit_code, make_resident_id
from services.identity.settings import IdentitySettings
from tests.exchange.access.conftest import World
from tests.exchange.conftest import ISSUER, Issuer
from tests.identity.conftest import SECRET

NUMBER = make_resident_id("330106", date(1988, 3, 12), 101)


def test_references_are_keyed_normalised_and_kind_bound() -> None:
    refs = SubjectRefs("secret-one")
    ref = refs.person(NUMBER)
    assert len(ref) == 64 and int(ref, 16) >= 0
    assert NUMBER not in ref
    assert refs.person(f"  {NUMBER.lower()} ") == ref
    assert refs.person(NUMBER.replace("1", "１")) == ref  # full-width digits (NFKC)
    assert SubjectRefs("secret-one").person(NUMBER) == ref  # the same on every part
    assert SubjectRefs("secret-two").person(NUMBER) != ref  # keyed by the secret
    assert refs.ref("other", NUMBER) != ref  # the kind is part of what is hashed
    assert refs.ref("other", "abc") != refs.ref("other", "ABC")  # only identifiers fold case
    with pytest.raises(ValueError):
        SubjectRefs("")
    assert "secret" not in repr(refs)


def test_a_reference_is_the_documented_construction() -> None:
    """HMAC-SHA256 over ``kind \x1f normalised key`` keyed by HKDF-SHA256(secret, info): the
    references already stored in ledgers and consents stay valid across any speed-up."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"pingtai subject reference v1"
    ).derive(b"secret-one")
    refs = SubjectRefs("secret-one")
    for kind, key_given, normalised in [
        ("resident_id", f" {NUMBER.lower()} ", NUMBER),
        ("certificate", "Ａb-1", "Ab-1"),
    ]:
        expected = hmac.new(key, f"{kind}\x1f{normalised}".encode(), sha256).hexdigest()
        assert refs.ref(kind, key_given) == expected
        assert refs.ref(kind, key_given) == expected  # the keyed state is copied, not consumed


@pytest.fixture
async def identity_app(tmp_path: Path, issuer: Issuer) -> AsyncIterator[FastAPI]:
    """Identity in process on its own SQLite database (the contract does not vary by backend)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"
    await asyncio.to_thread(migrate, "services.identity", url)
    app = create_identity_app(
        IdentitySettings(database_url=url, issuer=ISSUER, secret_key=SECRET, nats_url=None)
    )
    jwks = issuer.jwks()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    app.state.token_verifier = TokenVerifier(
        issuer=ISSUER,
        audience="pingtai",
        jwks=JwksCache("http://jwks.test/jwks.json", client=httpx.AsyncClient(transport=transport)),
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def identity_client(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(identity_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
        yield client


async def _identity_events(app: FastAPI) -> list[CloudEvent]:
    async with app.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(TABLES.outbox.c.payload).order_by(TABLES.outbox.c.position)
        )
        return [CloudEvent.model_validate(json.loads(r[0])) for r in rows]


async def test_identitys_events_carry_the_reference_exchange_keeps(
    identity_app: FastAPI, identity_client: httpx.AsyncClient, world: World
) -> None:
    admin = world.issuer.headers(roles=["platform_admin"], acr="")
    code = make_credit_code("9", "1", "330106", "MA200077")
    registered = await identity_client.post(
        "/v1/register",
        json={"name": "张伟", "resident_id": NUMBER, "phone": "13800000001",
              "password": "Pingtai-Demo-2026"},
    )  # fmt: skip
    assert registered.status_code == 202
    org = await identity_client.post(
        "/v1/organisations",
        json={"kind": "enterprise", "name": "杭州测试有限公司", "region_code": "330106",
              "credit_code": code},
        headers=admin,
    )  # fmt: skip
    assert org.status_code == 201, org.text
    renamed = await identity_client.patch(
        f"/v1/organisations/{org.json()['id']}", json={"name": "杭州测试科技有限公司"},
        headers=admin,
    )  # fmt: skip
    assert renamed.status_code == 200, renamed.text

    refs = SubjectRefs(SECRET)
    events = {e.type: e for e in await _identity_events(identity_app)}
    data = {kind: e.data or {} for kind, e in events.items()}
    person = events["pingtai.identity.person.registered"]
    assert data[person.type]["subject_ref"] == refs.person(NUMBER)
    assert NUMBER not in json.dumps(data[person.type])
    org_registered = data["pingtai.identity.organisation.registered"]
    assert org_registered["subject_ref"] == refs.enterprise(code)
    updated = events["pingtai.identity.organisation.updated"]
    assert data[updated.type]["subject_ref"] == refs.enterprise(code)

    # Exchange's consumers keep them (and apply a repeated or later event in place).
    async with world.app.state.database.sessionmaker() as session:
        await apply_person(session, person)
        await apply_person(session, person)
        await apply_organisation(session, events["pingtai.identity.organisation.registered"])
        await apply_organisation(session, updated)
        await session.commit()
        kept = await session.get(PersonSubject, data[person.type]["user_id"])
        enterprise = await session.get(OrganisationSubject, org.json()["id"])
    assert kept is not None and kept.subject_ref == refs.person(NUMBER)
    assert enterprise is not None
    assert (enterprise.kind, enterprise.name) == ("enterprise", "杭州测试科技有限公司")
    assert enterprise.subject_ref == refs.enterprise(code)


def _field(name: str, type_: str = "string") -> DatasetField:
    return DatasetField(name=name, type=type_, sensitivity="sensitive")


@pytest.mark.parametrize(
    ("field", "value", "masked"),
    [
        (_field("name"), "张三", "张*"),
        (_field("name"), "张三丰", "张*丰"),
        (_field("mother_name"), "欧阳娜娜", "欧**娜"),
        (_field("name"), "李", "*"),
        (_field("phone"), "13800001234", "138****1234"),
        (_field("resident_id"), NUMBER, f"{NUMBER[:6]}********{NUMBER[-4:]}"),
        (_field("credit_code"), "91330106MA2000019C", "91330106********9C"),
        (_field("bank_account"), "6222021234567890", "************7890"),
        (_field("certificate_no"), "浙(2024)杭州市不动产权第0012345号", "*" * 19 + "345号"),
        (_field("household_address"), "浙江省杭州市西湖区文三路", "浙江省杭州市******"),
        (_field("birth_date", "date"), "1988-03-12", "1988-**-**"),
        (_field("birth_datetime", "datetime"), "2026-01-02T03:04:05+08:00", "2026-**-**"),
        (_field("paid_months", "integer"), 120, None),
        (_field("insured", "boolean"), True, None),
        (_field("status"), "active", "a*****"),
        (_field("status"), None, None),
    ],
)
def test_masks(field: DatasetField, value: object, masked: object) -> None:
    assert masking.mask_value(field, value) == masked

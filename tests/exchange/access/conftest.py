"""A small province for the access tests: organisations, people, datasets of every kind of
sensitivity and sharing, hosted records, and the tokens of everyone who calls.

``world`` puts the datasets and records straight into the exchange's tables (the data part's
own tests cover how they get there) and feeds identity's events to the access part's consumers,
as NATS would.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from libs.common.events import CloudEvent
from libs.common.subjects import subject_refs_for
from services.exchange.access import subjects as access_subjects
from services.exchange.access.models import Grant
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.ledger import LedgerEntry
from services.exchange.records.models import HostedRecord
from services.identity.identifiers import make_credit_code, make_resident_id
from tests.exchange.conftest import Issuer

POLICE = "org-police"  # owns the population dataset (conditional)
MARKET = "org-market"  # owns the legal-entity dataset (unconditional)
HRSS = "org-hrss"  # a consuming department
TAX = "org-tax"  # another department, with no grants
YUNQI = "org-yunqi"  # an enterprise

PEOPLE = "ds-people"
ENTITIES = "ds-entities"
SECRETS = "ds-secrets"
RETIRED = "ds-retired"

ZHANG = "person-zhang"
WANG = "person-wang"
NOBODY = "person-nobody"  # learnt by the tests that need them; no record of theirs is held
ZHANG_ID = make_resident_id("330106", date(1988, 3, 12), 101)
WANG_ID = make_resident_id("330105", date(1992, 7, 3), 102)
NOBODY_ID = make_resident_id("330110", date(1995, 5, 30), 105)
YUNQI_CODE = make_credit_code("9", "1", "330106", "MA200001")

PEOPLE_FIELDS = [
    ("resident_id", "string", "personal"),
    ("name", "string", "personal"),
    ("phone", "string", "sensitive"),
    ("birth_date", "date", "sensitive"),
    ("paid_months", "integer", "sensitive"),
    ("household_address", "string", "personal"),
    ("region", "string", "public"),
    ("status", "string", "internal"),
]
ENTITY_FIELDS = [
    ("credit_code", "string", "public"),
    ("entity_name", "string", "public"),
    ("registered_capital", "number", "internal"),
    ("contact_phone", "string", "sensitive"),
]


def _dataset(
    dataset_id: str,
    owner: str,
    *,
    share_type: str,
    kind: str,
    key_field: str,
    fields: list[tuple[str, str, str]],
    status: str = "published",
) -> ExchangeDataset:
    return ExchangeDataset(
        id=dataset_id,
        code=dataset_id,
        version=1,
        owner_org_id=owner,
        status=status,
        name=f"数据集 {dataset_id}",
        name_en=None,
        description="",
        region_code="330100",
        field_definitions=[
            {"name": n, "type": t, "sensitivity": s, "description": ""} for n, t, s in fields
        ],
        subject_key_kind=kind,
        subject_key_field=key_field,
        share_type=share_type,
        open_type="not_open",
        not_open_reason="个人信息",
        update_frequency="daily",
        mode="hosted",
        endpoint_url=None,
        published_at=datetime.now(UTC),
        retired_at=None,
        retired_version=None,
    )


def _record(dataset_id: str, key: str, data: dict[str, Any]) -> HostedRecord:
    return HostedRecord(
        dataset_id=dataset_id,
        subject_key=key,
        version=1,
        data=json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    )


def _event(event_type: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4().hex,
        source="/pingtai/identity",
        type=event_type,
        time=datetime.now(UTC),
        subject=None,
        data=data,
    )


@dataclass
class World:
    """The province, its callers' tokens and shortcuts to what the app stored."""

    app: FastAPI
    client: httpx.AsyncClient
    issuer: Issuer

    @property
    def refs(self) -> Any:
        return subject_refs_for(self.app.state.settings.secret_key)

    # Tokens ------------------------------------------------------------------------------------
    def officer(self, org: str, *, sub: str | None = None) -> dict[str, str]:
        return self.issuer.headers(sub=sub or f"officer-of-{org}", roles=["citizen", "officer"],
                                   org=org, acr="3")  # fmt: skip

    def dept_admin(self, org: str) -> dict[str, str]:
        return self.issuer.headers(sub=f"admin-of-{org}", roles=["citizen", "dept_admin"],
                                   org=org, acr="3")  # fmt: skip

    def system(self, org: str, *, scope: str = "") -> dict[str, str]:
        """A department's system: client credentials (no acr), with an org."""
        return self.issuer.headers(sub=f"client-of-{org}", roles=[], org=org, scope=scope, acr="")

    def workflow(
        self, org: str, *, applicant: str | None = ZHANG, applicant_org: str | None = None
    ) -> dict[str, str]:
        """Workflow's client reading for an application: it names the applicant (Zhang unless
        told, ``applicant=None`` for none) and the enterprise they applied for, as its exchange
        client does."""
        headers = self.system(org, scope="exchange:application-basis")
        if applicant is not None:
            headers["X-Applicant-Id"] = applicant
        if applicant_org is not None:
            headers["X-Applicant-Org-Id"] = applicant_org
        return headers

    def citizen(self, sub: str) -> dict[str, str]:
        return self.issuer.headers(sub=sub, roles=["citizen"], acr="2")

    def agent(self, org: str, sub: str = "agent-shen") -> dict[str, str]:
        return self.issuer.headers(sub=sub, roles=["citizen", "enterprise_agent"], org=org,
                                   acr="2")  # fmt: skip

    def platform_admin(self) -> dict[str, str]:
        return self.issuer.headers(sub="platform-admin", roles=["platform_admin"], acr="")

    # Shortcuts ---------------------------------------------------------------------------------
    async def grant(
        self, dataset: str, org: str, fields: list[str], **extra: Any
    ) -> dict[str, Any]:
        """Ask for a grant as ``org``'s system and, if it waits, approve it as the owner."""
        body = {"dataset_id": dataset, "fields": fields, "purpose": "测试",
                "valid_until": in_days(30), **extra}  # fmt: skip
        asked = await self.client.post("/v1/grants", json=body, headers=self.system(org))
        assert asked.status_code == 201, asked.text
        grant: dict[str, Any] = asked.json()
        if grant["status"] == "pending":
            approved = await self.client.post(
                f"/v1/grants/{grant['id']}/approve",
                headers=self.dept_admin(grant["owner_org_id"]),
            )
            assert approved.status_code == 200, approved.text
            grant = approved.json()
        return grant

    async def expire_grant(self, grant_id: str) -> None:
        async with self.app.state.database.sessionmaker() as session:
            await session.execute(
                update(Grant)
                .where(Grant.id == grant_id)
                .values(valid_until=datetime.now(UTC) - timedelta(seconds=1))
            )
            await session.commit()
        cache = getattr(self.app.state, "grant_cache", None)
        if cache is not None:  # as another replica would after its entry's time is up
            cache.forget(*await self._grant_key(grant_id))

    async def _grant_key(self, grant_id: str) -> tuple[str, str]:
        async with self.app.state.database.sessionmaker() as session:
            grant = await session.get(Grant, grant_id)
            assert grant is not None
            return grant.requester_org_id, grant.dataset_id

    async def ledger(self) -> list[LedgerEntry]:
        async with self.app.state.database.sessionmaker() as session:
            rows = await session.execute(select(LedgerEntry).order_by(LedgerEntry.position))
            return list(rows.scalars())

    async def learn_person(self, person_id: str, resident_id: str) -> None:
        await self._apply(
            access_subjects.apply_person,
            _event("pingtai.identity.person.registered",
                   {"user_id": person_id, "acr": 1, "region_code": resident_id[:6],
                    "subject_ref": self.refs.person(resident_id)}),
        )  # fmt: skip

    async def learn_org(self, org_id: str, kind: str, name: str, credit_code: str) -> None:
        await self._apply(
            access_subjects.apply_organisation,
            _event("pingtai.identity.organisation.registered",
                   {"org_id": org_id, "kind": kind, "name": name, "region_code": "330100",
                    "subject_ref": self.refs.enterprise(credit_code)}),
        )  # fmt: skip

    async def _apply(self, handler: Any, event: CloudEvent) -> None:
        async with self.app.state.database.sessionmaker() as session:
            await handler(session, event)
            await session.commit()


@pytest.fixture
async def world(exchange_app: FastAPI, client: httpx.AsyncClient, issuer: Issuer) -> World:
    async with exchange_app.state.database.sessionmaker() as session:
        session.add_all(
            [
                _dataset(PEOPLE, POLICE, share_type="conditional", kind="resident_id",
                         key_field="resident_id", fields=PEOPLE_FIELDS),
                _dataset(ENTITIES, MARKET, share_type="unconditional", kind="credit_code",
                         key_field="credit_code", fields=ENTITY_FIELDS),
                _dataset(SECRETS, POLICE, share_type="not_shared", kind="resident_id",
                         key_field="resident_id", fields=PEOPLE_FIELDS[:2]),
                _dataset(RETIRED, MARKET, share_type="unconditional", kind="credit_code",
                         key_field="credit_code", fields=ENTITY_FIELDS, status="retired"),
            ]
        )  # fmt: skip
        await session.flush()
        session.add_all(
            [
                _record(PEOPLE, ZHANG_ID, {
                    "resident_id": ZHANG_ID, "name": "张三丰", "phone": "13800001234",
                    "birth_date": "1988-03-12", "paid_months": 120,
                    "household_address": "浙江省杭州市西湖区文三路 90 号", "region": "330106",
                    "status": "active"}),
                _record(PEOPLE, WANG_ID, {
                    "resident_id": WANG_ID, "name": "王芳", "phone": "13900005678",
                    "birth_date": "1992-07-03", "paid_months": 60,
                    "household_address": "浙江省杭州市上城区解放路 1 号", "region": "330105",
                    "status": "active"}),
                _record(ENTITIES, YUNQI_CODE, {
                    "credit_code": YUNQI_CODE, "entity_name": "杭州云栖科技有限公司",
                    "registered_capital": 500.0, "contact_phone": "13700009999"}),
            ]
        )  # fmt: skip
        await session.commit()
    world = World(exchange_app, client, issuer)
    await world.learn_person(ZHANG, ZHANG_ID)
    await world.learn_person(WANG, WANG_ID)
    for org, kind, name, serial in (
        (POLICE, "department", "杭州市公安局", "00240003"),
        (MARKET, "department", "杭州市市场监督管理局", "00240002"),
        (HRSS, "department", "杭州市人力资源和社会保障局", "00240004"),
        (TAX, "department", "国家税务总局杭州市税务局", "00240006"),
    ):
        await world.learn_org(org, kind, name, make_credit_code("1", "1", "330100", serial))
    await world.learn_org(YUNQI, "enterprise", "杭州云栖科技有限公司", YUNQI_CODE)
    return world


def in_days(days: float) -> str:
    """An RFC 3339 time ``days`` from now."""
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()

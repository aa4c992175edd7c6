"""Exchange: department A's conditional people dataset (hosted records about the citizen) and
its open dataset, department B's grant on the first (and a pending one), the citizen's and
enterprise E's consents to department B.

Datasets and records go straight into the tables and identity's events into the consumers, as
the exchange's own access tests do (``tests/exchange/access/conftest.py``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from services.identity.identifiers import make_credit_code, make_resident_id
from tests.authz.callers import CITIZEN, OTHER_CITIZEN
from tests.authz.worlds import Target, World, in_days, unique
from tests.exchange.access.conftest import (
    ENTITY_FIELDS,
    PEOPLE_FIELDS,
    WANG_ID,
    YUNQI_CODE,
    ZHANG_ID,
    _dataset,
    _record,
)
from tests.exchange.access.conftest import World as Province

PEOPLE, OPEN, ENTITIES = "ds-authz-people", "ds-authz-open", "ds-authz-entities"
OTHER_CODE = make_credit_code("9", "1", "330106", "MA200002")
BASIS = "statute:《浙江省公共数据条例》第二十条"
RECORD = {
    "resident_id": ZHANG_ID, "name": "张三丰", "phone": "13800001234", "birth_date": "1988-03-12",
    "paid_months": 120, "household_address": "浙江省杭州市西湖区文三路 90 号",
    "region": "330106", "status": "active",
}  # fmt: skip


class ExchangeWorld(World):
    part = "exchange"

    async def seed(self) -> None:
        people = _dataset(PEOPLE, self.ids.dept_a, share_type="conditional", kind="resident_id",
                          key_field="resident_id", fields=PEOPLE_FIELDS)  # fmt: skip
        opened = _dataset(OPEN, self.ids.dept_a, share_type="unconditional", kind="resident_id",
                          key_field="resident_id", fields=PEOPLE_FIELDS)  # fmt: skip
        opened.open_type, opened.not_open_reason = "open", None
        entities = _dataset(ENTITIES, self.ids.dept_a, share_type="conditional",
                            kind="credit_code", key_field="credit_code",
                            fields=ENTITY_FIELDS)  # fmt: skip
        async with self.app.state.database.sessionmaker() as session:
            session.add_all([people, opened, entities])
            await session.flush()
            session.add(_record(OPEN, ZHANG_ID, RECORD))
            await session.commit()
        # The owner pushes the citizen's record (so it has a history).
        await self.call("POST", f"/v1/datasets/{PEOPLE}/records", "dept_admin:same-dept",
                        content=json.dumps(RECORD).encode() + b"\n",
                        headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
        self.province = Province(self.app, self.http, self.issuer)
        await self.province.learn_person(CITIZEN, ZHANG_ID)
        await self.province.learn_person(OTHER_CITIZEN, WANG_ID)
        for number, agent in enumerate(("agent:own", "agent:other"), start=201):
            resident_id = make_resident_id("330106", date(1990, 1, 1), number)
            await self.province.learn_person(self.ids.sub(agent), resident_id)
        await self.province.learn_org(self.ids.ent_f, "enterprise", "另一家", OTHER_CODE)
        for org, kind, code in (
            (self.ids.dept_a, "department", "00250001"),
            (self.ids.dept_b, "department", "00250002"),
        ):
            await self.province.learn_org(
                org, kind, kind, make_credit_code("1", "1", "330100", code)
            )
        await self.province.learn_org(self.ids.ent_e, "enterprise", "云栖", YUNQI_CODE)
        # Department B reads the citizen's name from department A's dataset.
        granted = await self.grant_body()
        await self.province.grant(PEOPLE, self.ids.dept_b, granted["fields"])

    async def grant_body(self) -> dict[str, Any]:
        return {"dataset_id": PEOPLE, "fields": ["region", "status"], "purpose": "核验身份",
                "valid_until": in_days(30)}  # fmt: skip

    def consent_body(self, caller: str = "citizen:own") -> dict[str, Any]:
        """A consent to department B: an enterprise's on its own data, a person's on theirs."""
        scope = ({"dataset_id": ENTITIES, "fields": ["contact_phone"]}
                 if caller.startswith("agent") else
                 {"dataset_id": PEOPLE, "fields": ["paid_months"]})  # fmt: skip
        return {"grantee_org_id": self.ids.dept_b, "purpose": "申请补贴", "datasets": [scope],
                "valid_until": in_days(30)}  # fmt: skip

    async def make_record(self) -> Target:
        return {"dataset_id": PEOPLE, "subject_key": ZHANG_ID}

    async def make_open(self) -> Target:
        return {"dataset_id": OPEN}

    async def make_pending(self) -> Target:
        """Department B asks for another of department A's datasets: the grant waits for A's
        admins (one grant per organisation and dataset, so a new dataset each time)."""
        dataset_id = unique("ds-authz")
        async with self.app.state.database.sessionmaker() as session:
            session.add(_dataset(dataset_id, self.ids.dept_a, share_type="conditional",
                                 kind="resident_id", key_field="resident_id",
                                 fields=PEOPLE_FIELDS))  # fmt: skip
            await session.commit()
        body = {**await self.grant_body(), "dataset_id": dataset_id}
        made = await self.call("POST", "/v1/grants", "officer:other-dept", 201, json=body)
        assert made["status"] == "pending", made
        return {"grant_id": made["id"]}

    async def make_consent(self) -> Target:
        made = await self.call("POST", "/v1/consents", "citizen:own", 201,
                               json=self.consent_body())  # fmt: skip
        return {"consent_id": made["id"]}

"""Identity: departments A and B, enterprises E and F, a person behind every caller (each with
the role the caller's token names), a member of department A, an OAuth client of department A."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select

from services.identity.identifiers import make_credit_code
from services.identity.people.models import User
from tests.authz.callers import CALLERS
from tests.authz.worlds import Target, World
from tests.identity.test_people_and_organisations import registration

ADMIN = "platform_admin"
# Each caller's person holds this role in this organisation ("" = platform-wide).
MEMBERSHIPS = {
    "agent:own": ("enterprise_agent", "ent_e"),
    "agent:other": ("enterprise_agent", "ent_f"),
    "officer:same-dept": ("officer", "dept_a"),
    "officer:other-dept": ("officer", "dept_b"),
    "dept_admin:same-dept": ("dept_admin", "dept_a"),
    "dept_admin:other-dept": ("dept_admin", "dept_b"),
    "platform_admin": ("platform_admin", ""),
    "auditor": ("auditor", ""),
    "evaluator": ("evaluator", ""),
}
REDIRECT = "https://portal.test/callback"


class IdentityWorld(World):
    part = "identity"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sequence = itertools.count(1)
        self.membership_id = ""
        self.holder = ""

    async def person(self) -> str:
        """A newly registered person's id."""
        number = next(self.sequence)
        body = registration(number)
        await self.call("POST", "/v1/register", "anonymous", 202, json=body)
        async with self.app.state.database.sessionmaker() as session:
            found = await session.execute(select(User.id).where(User.phone == body["phone"]))
            user_id: str = found.scalar_one()
        return user_id

    def organisation_body(self, kind: str = "department") -> dict[str, Any]:
        serial = f"{next(self.sequence):08d}"
        entity = "1" if kind == "department" else "9"
        return {"kind": kind, "name": f"机构 {serial}", "region_code": "330106",
                "credit_code": make_credit_code(entity, "1", "330106", serial)}  # fmt: skip

    async def organisation(self, kind: str) -> str:
        made = await self.call(
            "POST", "/v1/organisations", ADMIN, 201, json=self.organisation_body(kind)
        )
        org_id: str = made["id"]
        return org_id

    async def grant(self, user_id: str, role: str, org_id: str | None) -> str:
        body = {"user_id": user_id, "role": role, "org_id": org_id}
        made = await self.call("POST", "/v1/memberships", ADMIN, 201, json=body)
        membership_id: str = made["id"]
        return membership_id

    async def seed(self) -> None:
        self.ids.dept_a = await self.organisation("department")
        self.ids.dept_b = await self.organisation("department")
        self.ids.ent_e = await self.organisation("enterprise")
        self.ids.ent_f = await self.organisation("enterprise")
        for caller in CALLERS:
            if caller == "anonymous" or caller.startswith("service"):
                continue
            self.ids.subs[caller] = await self.person()
        for caller, (role, org) in MEMBERSHIPS.items():
            await self.grant(self.ids.subs[caller], role, getattr(self.ids, org) if org else None)

    async def make_member(self) -> Target:
        """An officer of department A who is none of the callers."""
        user_id = await self.person()
        await self.grant(user_id, "officer", self.ids.dept_a)
        return {"user_id": user_id}

    async def make_self(self) -> Target:
        return {"user_id": self.ids.subs["citizen:own"]}

    async def make_membership(self) -> Target:
        """An officer's role in department A, to take away: granted again
        once an allowed caller took it, the same one while refused callers try."""
        if not self.holder:
            self.holder = await self.person()
        body = {"user_id": self.holder, "role": "officer", "org_id": self.ids.dept_a}
        response = await self.http.post("/v1/memberships", json=body, headers=self.as_(ADMIN))
        if response.status_code == 201:
            self.membership_id = response.json()["id"]
        else:
            assert response.status_code == 409, response.text
        return {"membership_id": self.membership_id}

    async def make_dept_a(self) -> Target:
        return {"org_id": self.ids.dept_a}

    async def make_ent_e(self) -> Target:
        return {"org_id": self.ids.ent_e}

    async def make_client(self) -> Target:
        body = {
            "name": "部门系统",
            "grant_types": ["client_credentials"],
            "org_id": self.ids.dept_a,
        }
        made = await self.call("POST", "/v1/clients", ADMIN, 201, json=body)
        return {"client_id": made["client_id"]}

    async def make_public_client(self) -> Target:
        """A public client with a redirect URI: what a sign-in starts from."""
        body = {"name": "门户", "client_type": "public", "grant_types": ["authorization_code"],
                "redirect_uris": [REDIRECT], "scopes": ["openid"]}  # fmt: skip
        made = await self.call("POST", "/v1/clients", ADMIN, 201, json=body)
        return {
            "response_type": "code", "client_id": made["client_id"], "redirect_uri": REDIRECT,
            "scope": "openid", "state": "s", "code_challenge_method": "S256",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        }  # fmt: skip

    async def make_region(self) -> Target:
        return {"code": "330106"}

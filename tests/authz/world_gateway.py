"""Gateway's own API: a published plan and a hidden one, an application of department A and
one of enterprise E, each with a key."""

from __future__ import annotations

from tests.authz.worlds import Target, World, unique

ADMIN = "platform_admin"


class GatewayWorld(World):
    part = "gateway"

    def plan_body(self, *, published: bool = True) -> dict[str, object]:
        return {"code": unique("plan"), "name": "基础版", "requests_per_minute": 60,
                "requests_per_day": 10_000, "published": published}  # fmt: skip

    async def _plan(self, *, published: bool) -> str:
        made = await self.call(
            "POST", "/v1/plans", ADMIN, 201, json=self.plan_body(published=published)
        )
        plan_id: str = made["id"]
        return plan_id

    async def make_plan(self) -> Target:
        return {"plan_id": await self._plan(published=True)}

    async def make_plan_hidden(self) -> Target:
        return {"plan_id": await self._plan(published=False)}

    async def _application(self, caller: str) -> Target:
        made = await self.call("POST", "/v1/applications", caller, 201,
                               json={"name": unique("应用")})  # fmt: skip
        plan_id = (await self.target("plan"))["plan_id"]
        key = await self.call("POST", f"/v1/applications/{made['id']}/keys", caller, 201,
                              json={"plan_id": plan_id})  # fmt: skip
        return {"application_id": made["id"], "key_id": key["id"], "plan_id": plan_id}

    async def make_app_a(self) -> Target:
        """Department A's application."""
        return await self._application("dept_admin:same-dept")

    async def make_app_e(self) -> Target:
        """Enterprise E's application."""
        return await self._application("agent:own")

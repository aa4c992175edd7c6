"""Catalog: department A's datasets, items and bundles, published and draft."""

from __future__ import annotations

from typing import Any

from tests.authz.worlds import Target, World, unique
from tests.catalog.items.helpers import item_body, legal_entity_dataset

ADMIN = "dept_admin:same-dept"


class CatalogWorld(World):
    part = "catalog"

    def dataset_body(self) -> dict[str, Any]:
        return {**legal_entity_dataset(), "code": unique("zj-ds"), "owner_org_id": self.ids.dept_a}

    def item_body(self) -> dict[str, Any]:
        body = item_body(unique("zj-item"))
        body["owner_org_id"] = self.ids.dept_a
        return body

    async def _dataset(self, *, publish: bool) -> str:
        made = await self.call("POST", "/v1/datasets", ADMIN, 201, json=self.dataset_body())
        if publish:
            await self.call("POST", f"/v1/datasets/{made['id']}/publish", ADMIN, 200)
        dataset_id: str = made["id"]
        return dataset_id

    async def make_dataset(self) -> Target:
        return {"dataset_id": await self._dataset(publish=True), "number": 1}

    async def make_dataset_draft(self) -> Target:
        return {"dataset_id": await self._dataset(publish=False)}

    async def _item(self, *, publish: bool) -> str:
        made = await self.call("POST", "/v1/items", ADMIN, 201, json=self.item_body())
        if publish:
            await self.call("POST", f"/v1/items/{made['id']}/publish", ADMIN, 201)
        item_id: str = made["id"]
        return item_id

    async def make_item(self) -> Target:
        return {"item_id": await self._item(publish=True), "version": 1}

    async def make_item_draft(self) -> Target:
        return {"item_id": await self._item(publish=False)}

    async def make_items(self) -> Target:
        """Two published items of department A, for a new bundle."""
        return {"item_ids": [await self._item(publish=True) for _ in range(2)]}

    async def _bundle(self, *, publish: bool) -> str:
        items = await self.target("items")
        body = {"code": unique("zj-b"), "name": "一件事", "item_ids": items["item_ids"],
                "owner_org_id": self.ids.dept_a}  # fmt: skip
        made = await self.call("POST", "/v1/bundles", ADMIN, 201, json=body)
        if publish:
            await self.call("POST", f"/v1/bundles/{made['id']}/publish", ADMIN, 201)
        bundle_id: str = made["id"]
        return bundle_id

    async def make_bundle(self) -> Target:
        return {"bundle_id": await self._bundle(publish=True), "version": 1}

    async def make_bundle_draft(self) -> Target:
        return {"bundle_id": await self._bundle(publish=False)}

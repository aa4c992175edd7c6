"""A catalogue change that takes sharing away ends the grants it no longer allows: revoked with a
reason, ``grant.revoked`` through the outbox, and the next read refused and recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from libs.common.events import CloudEvent, new_event
from services.catalog.datasets.events import DatasetPublished, DatasetRetired
from services.exchange.access.cache import GrantCache
from services.exchange.datasets.consumers import follow_catalogue
from services.exchange.datasets.models import ExchangeDataset
from tests.exchange.access.conftest import ENTITIES, HRSS, MARKET, TAX, YUNQI_CODE, World
from tests.exchange.conftest import outbox_events

STATUTE = "statute:《市场主体登记管理条例》第三十五条"


async def _copy(world: World, dataset_id: str) -> ExchangeDataset:
    async with world.app.state.database.sessionmaker() as session:
        dataset = await session.get(ExchangeDataset, dataset_id)
        assert dataset is not None
        return dataset


async def _deliver(world: World, event: CloudEvent) -> None:
    """The catalogue consumer's handler in a transaction of its own, as the bus runs it."""
    async with world.app.state.database.sessionmaker() as session:
        await follow_catalogue(session, event)
        await session.commit()


def definition_of(held: ExchangeDataset, **changes: Any) -> dict[str, Any]:
    """The catalogue's definition of the dataset the read copy holds, with ``changes``."""
    return {
        "code": held.code, "owner_org_id": held.owner_org_id, "name": held.name,
        "name_en": held.name_en, "description": held.description,
        "region_code": held.region_code, "fields": held.field_definitions,
        "subject_key": {"kind": held.subject_key_kind, "field": held.subject_key_field},
        "share_type": held.share_type, "open_type": held.open_type,
        "not_open_reason": held.not_open_reason, "update_frequency": held.update_frequency,
        "hosting": {"mode": held.mode, "endpoint_url": held.endpoint_url}, **changes,
    }  # fmt: skip


def next_version_event(held: ExchangeDataset, **changes: Any) -> CloudEvent:
    """The catalogue's event publishing the dataset's next version, with ``changes``."""
    return new_event(
        DatasetPublished(
            dataset_id=held.id, code=held.code, owner_org_id=held.owner_org_id,
            version=held.version + 1, published_at=datetime.now(UTC),
            definition=definition_of(held, **changes), published_by="admin-of-owner",
        ),
        subject=held.id,
    )  # fmt: skip


async def _republish(world: World, dataset_id: str, **changes: Any) -> CloudEvent:
    """The catalogue's event for the dataset's next version, with ``changes``, delivered."""
    event = next_version_event(await _copy(world, dataset_id), **changes)
    await _deliver(world, event)
    return event


async def _grant_view(world: World, grant_id: str) -> dict[str, Any]:
    response = await world.client.get(f"/v1/grants/{grant_id}", headers=world.platform_admin())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _read(world: World, org: str) -> Any:
    return await world.client.get(
        f"/v1/datasets/{ENTITIES}/records/{YUNQI_CODE}",
        params={"purpose": "核验企业", "basis": STATUTE},
        headers=world.system(org),
    )


async def _announce_revocations(world: World) -> list[dict[str, Any]]:
    """Hand each recorded ``grant.revoked`` to the grant cache, as the ``exchange-grant-changes``
    broadcast does in every process once the outbox relay publishes it; their data."""
    cache: GrantCache = world.app.state.grant_cache
    revoked = [d for t, d in await outbox_events(world.app) if t.endswith("grant.revoked")]
    for data in revoked:
        await cache.apply(
            CloudEvent(id=data["grant_id"], source="/pingtai/exchange",
                       type="pingtai.exchange.grant.revoked", time=datetime.now(UTC),
                       subject=data["grant_id"], data=data)
        )  # fmt: skip
    return revoked


async def test_a_dataset_made_not_shared_ends_its_open_grants(world: World) -> None:
    granted = await world.grant(ENTITIES, HRSS, ["credit_code", "entity_name"])
    assert granted["decided_by"] == "auto"
    pending = await world.client.post(
        "/v1/grants",
        json={"dataset_id": ENTITIES, "fields": ["entity_name", "contact_phone"],
              "unmasked_fields": ["contact_phone"], "purpose": "核验",
              "valid_until": "2027-06-30T00:00:00Z"},
        headers=world.system(TAX),
    )  # fmt: skip
    assert pending.status_code == 201 and pending.json()["status"] == "pending", pending.text
    before = await _read(world, HRSS)
    assert before.status_code == 200, before.text  # the grant is cached from here on

    await _republish(world, ENTITIES, share_type="not_shared", open_type="not_open",
                     not_open_reason="不予共享")  # fmt: skip

    for grant_id in (granted["id"], pending.json()["id"]):
        view = await _grant_view(world, grant_id)
        assert view["status"] == "revoked"
        assert view["revoked_by"] == "catalogue"
        assert view["revoke_reason"].startswith("dataset-not-shared: from catalogue version 2")
    revoked = await _announce_revocations(world)
    assert sorted(d["grant_id"] for d in revoked) == sorted([granted["id"], pending.json()["id"]])
    assert {d["by"] for d in revoked} == {"catalogue"}
    assert all(d["reason"].startswith("dataset-not-shared") for d in revoked)

    after = await _read(world, HRSS)
    assert after.status_code == 403, after.text
    assert after.headers["content-type"].startswith("application/problem+json")
    assert after.json()["type"].endswith("/access-refused")
    assert after.json()["reason"] == "grant-revoked"
    last = (await world.ledger())[-1]
    assert (last.actor_org_id, last.outcome) == (HRSS, "refused")
    asked_again = await world.client.post(
        "/v1/grants",
        json={"dataset_id": ENTITIES, "fields": ["entity_name"], "purpose": "再试",
              "valid_until": "2027-06-30T00:00:00Z"},
        headers=world.system(HRSS),
    )  # fmt: skip
    assert asked_again.status_code == 403
    assert asked_again.json()["type"].endswith("/dataset-not-shared")


async def test_a_withdrawn_dataset_ends_its_grants_once(world: World) -> None:
    granted = await world.grant(ENTITIES, HRSS, ["entity_name"])
    assert (await _read(world, HRSS)).status_code == 200
    held = await _copy(world, ENTITIES)
    retirement = new_event(
        DatasetRetired(dataset_id=ENTITIES, code=held.code, owner_org_id=MARKET,
                       last_version=held.version, retired_at=datetime.now(UTC),
                       retired_by="admin-of-market"),
        subject=ENTITIES,
    )  # fmt: skip
    await _deliver(world, retirement)
    await _deliver(world, retirement)  # redelivered: nothing more happens
    view = await _grant_view(world, granted["id"])
    assert view["status"] == "revoked"
    assert view["revoke_reason"].startswith("dataset-retired: the catalogue withdrew")
    assert len(await _announce_revocations(world)) == 1
    refused = await _read(world, HRSS)
    assert refused.status_code == 403
    assert (await world.ledger())[-1].outcome == "refused"


async def test_becoming_conditional_ends_only_the_grants_nobody_approved(world: World) -> None:
    automatic = await world.grant(ENTITIES, HRSS, ["entity_name"])
    approved = await world.grant(ENTITIES, TAX, ["entity_name", "contact_phone"],
                                 unmasked_fields=["contact_phone"])  # fmt: skip
    assert (automatic["decided_by"], approved["decided_by"]) == ("auto", f"admin-of-{MARKET}")

    await _republish(world, ENTITIES, share_type="conditional")

    assert (await _grant_view(world, automatic["id"]))["status"] == "revoked"
    assert (await _grant_view(world, approved["id"]))["status"] == "granted"
    [revoked] = await _announce_revocations(world)
    assert revoked["grant_id"] == automatic["id"]
    assert revoked["reason"].startswith("dataset-now-conditional")
    assert (await _read(world, HRSS)).status_code == 403
    assert (await _read(world, TAX)).status_code == 200


async def test_other_changes_leave_grants_alone(world: World) -> None:
    granted = await world.grant(ENTITIES, HRSS, ["entity_name"])
    await _republish(world, ENTITIES, share_type="conditional")  # version 2: ends auto grants
    approved = await world.grant(ENTITIES, HRSS, ["entity_name"])  # asked anew, approved
    await _republish(world, ENTITIES, share_type="unconditional", description="更新说明")
    assert (await _grant_view(world, granted["id"]))["status"] == "revoked"
    assert (await _grant_view(world, approved["id"]))["status"] == "granted"
    assert (await _read(world, HRSS)).status_code == 200

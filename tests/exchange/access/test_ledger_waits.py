"""While a query waits for its ledger entries' group commit it holds no pooled connection:
waiting requests would otherwise hold them all and leave the ledger's writer none."""

from __future__ import annotations

from sqlalchemy import event

from tests.exchange.access.conftest import (
    HRSS,
    NOBODY_ID,
    PEOPLE,
    TAX,
    WANG_ID,
    ZHANG_ID,
    World,
    in_days,
)
from tests.exchange.conftest import connections_held_while_appending

STATUTE = "statute:《社会保险法》第五十七条"


async def test_reads_and_refusals_release_their_connections_before_the_ledger(
    world: World,
) -> None:
    await world.grant(PEOPLE, HRSS, ["name", "status"])
    consent = await world.client.post(
        "/v1/consents",
        json={"grantee_org_id": HRSS, "purpose": "申请补贴",
              "datasets": [{"dataset_id": PEOPLE, "fields": ["name"]}],
              "valid_until": in_days(30)},
        headers=world.citizen("person-zhang"),
    )  # fmt: skip
    assert consent.status_code == 201, consent.text
    consent_basis = f"consent:{consent.json()['id']}"
    people = f"/v1/datasets/{PEOPLE}/records"
    with connections_held_while_appending(world.app) as held:
        answers = [
            # A read with a consent (read from the database), one without a record, a refusal
            # of the whole request (no grant), and a batch mixing them.
            await world.client.get(
                f"{people}/{ZHANG_ID}", params={"purpose": "核验", "basis": consent_basis},
                headers=world.officer(HRSS),
            ),
            await world.client.get(
                f"{people}/{NOBODY_ID}",
                params={"purpose": "核验", "basis": STATUTE, "fields": "status"},
                headers=world.officer(HRSS),
            ),
            await world.client.get(
                f"{people}/{ZHANG_ID}", params={"purpose": "核验", "basis": STATUTE},
                headers=world.officer(TAX),
            ),
            await world.client.post(
                f"{people}:batch",
                json={"purpose": "批量核验", "fields": ["status"], "basis": STATUTE,
                      "subjects": [{"subject_key": WANG_ID},
                                   {"subject_key": ZHANG_ID, "basis": consent_basis}]},
                headers=world.officer(HRSS),
            ),
        ]  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 403, 200]
    assert answers[1].json()["found"] is False
    assert held == [0, 0, 0, 0]
    # Each was counted on its way to the ledger until it appended, an unknown dataset (404,
    # nothing recorded) until it left: none is left counted to delay the writer's commits.
    missing = await world.client.get(
        "/v1/datasets/ds-none/records/x", params={"purpose": "核验", "basis": STATUTE},
        headers=world.officer(HRSS),
    )  # fmt: skip
    assert missing.status_code == 404
    assert world.app.state.ledger.on_their_way == 0


async def test_a_fetch_takes_no_connection_from_the_pool_on_sqlite(world: World) -> None:
    # On SQLite the fetch's reads run on connections the engine set apart for them and the
    # ledger's writer on a connection of its own: once those are open (the first fetch, with
    # the grant and dataset it caches), a fetch checks nothing out of the pool.
    engine = world.app.state.database.engine
    await world.grant(PEOPLE, HRSS, ["name", "status"])
    url = f"/v1/datasets/{PEOPLE}/records/{ZHANG_ID}"
    params = {"purpose": "核验", "basis": STATUTE, "fields": "status"}
    first = await world.client.get(url, params=params, headers=world.officer(HRSS))
    assert first.status_code == 200, first.text
    checkouts: list[int] = []

    def count(*_: object) -> None:
        checkouts.append(1)

    event.listen(engine.sync_engine, "checkout", count)
    try:
        answers = [
            await world.client.get(url, params=params, headers=world.officer(HRSS))
            for _ in range(3)
        ]
    finally:
        event.remove(engine.sync_engine, "checkout", count)
    assert [a.json()["found"] for a in answers] == [True, True, True]
    positions = [a.json()["ledger_position"] for a in answers]
    assert positions == sorted(set(positions)) and positions[0] > first.json()["ledger_position"]
    if engine.dialect.name == "sqlite":  # PostgreSQL reads through the pool (asyncpg)
        assert checkouts == []
    assert engine.pool.checkedout() == 0

"""The exchange announces a group commit's accesses in one ``access.batch_recorded`` event:
the figures are those of the same accesses announced one by one, and each ledger position
counts once however it arrives."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from libs.common.events import CloudEvent
from services.evaluation.indicators.replay import clear_derived
from tests.evaluation import scenario
from tests.evaluation.helpers import database_of, project, rows
from tests.evaluation.scenario import at, event


def _positioned(events: list[CloudEvent]) -> list[dict[str, Any]]:
    """The scenario's single access events' data, each given a ledger position."""
    accesses = [e for e in events if e.type == "pingtai.exchange.access.recorded"]
    return [{**(e.data or {}), "position": n} for n, e in enumerate(accesses, start=1)]


def _batches(entries: list[dict[str, Any]], size: int) -> list[CloudEvent]:
    return [
        event(
            "exchange.access.batch_recorded",
            {
                "first_position": chunk[0]["position"],
                "last_position": chunk[-1]["position"],
                "entries": chunk,
            },
            time=at(5, 6),
            subject=f"{chunk[0]['position']}-{chunk[-1]['position']}",
        )  # fmt: skip
        for chunk in (entries[i : i + size] for i in range(0, len(entries), size))
    ]


def _without_single_accesses(events: list[CloudEvent]) -> list[CloudEvent]:
    return [e for e in events if e.type != "pingtai.exchange.access.recorded"]


async def test_batches_give_the_figures_of_single_events(evaluation_app: FastAPI) -> None:
    database = database_of(evaluation_app)
    events = scenario.all_events()
    await project(database, events)
    one_by_one = await rows(database)
    async with database.sessionmaker() as session, session.begin():
        await clear_derived(session)
    entries = _positioned(events)
    await project(database, _without_single_accesses(events) + _batches(entries, 4))
    assert await rows(database) == one_by_one


async def test_a_position_counts_once_alone_or_in_a_batch(evaluation_app: FastAPI) -> None:
    database = database_of(evaluation_app)
    events = scenario.all_events()
    entries = _positioned(events)
    await project(database, _without_single_accesses(events) + _batches(entries, 4))
    once = await rows(database)
    # The same positions again: as single events (a replay of the older stream), in other
    # batches, and a batch repeated within one delivery.
    singles = [
        event("exchange.access.recorded", entry, time=at(5, 6), subject="ds1") for entry in entries
    ]
    await project(database, singles)
    await project(database, _batches(entries, 2) + _batches(entries, 5), batch=3)
    assert await rows(database) == once
    assert once  # the scenario counted something

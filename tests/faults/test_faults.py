"""Faults under a steady stream of applications: nothing accepted is lost, nothing applied twice.

One `pingtai up` (real processes, NATS, the gateway, the demo province) serves the whole module:
the four faults run one after another on it, each under its own stream of "open a business"
applications (before, during and after the fault), and each is followed by every check of
`checks.py` over everything accepted so far. Counts per fault are printed at the end of the run,
in pytest's warnings summary (docs/faults.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from tests.faults.checks import settle_and_compare
from tests.faults.platform import FaultPlatform
from tests.faults.traffic import Counts, People, Traffic, report

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(280)]

# The stream around each fault is short: at one submission every 0.6 s, 3 s puts applications
# at every step (submitting, fetching, awaiting decisions) when the fault hits and after it. The
# fault itself lasts what the issue asks (NATS down 10 s) or what makes it bite (the lock).
BEFORE_S = 3.0  # traffic before the fault
AFTER_S = 3.0  # and after it (or after the part is back)
NATS_DOWN_S = 10.0
# 3 s past SQLite's busy timeout (5 s): writes fail, not just wait (held 6.5 s, none did).
LOCK_HELD_S = 8.0
LOCKED_DATABASES = ("workflow", "exchange", "evaluation")

Fault = Callable[[FaultPlatform, Traffic], Awaitable[str]]


async def _under_traffic(
    platform: FaultPlatform, people: People, fault: Fault
) -> tuple[Counts, list[str], str]:
    await people.refresh()
    traffic = Traffic(people)
    traffic.start()
    try:
        await asyncio.sleep(BEFORE_S)
        what = await fault(platform, traffic)
        await asyncio.sleep(AFTER_S)
    finally:
        counts = await traffic.stop_and_drain()
    return counts, traffic.accepted_ids, what


def _run(
    name: str,
    fault: Fault,
    platform: FaultPlatform,
    people: People,
    accepted: set[str],
) -> Counts:
    started = time.monotonic()
    counts, ids, what = asyncio.run(_under_traffic(platform, people, fault))
    accepted.update(ids)
    probe = asyncio.run(Traffic(people).probe())
    accepted.add(probe["id"])
    findings = asyncio.run(settle_and_compare(platform, people, accepted))
    took = time.monotonic() - started
    retried = f"\n  retried: {counts.routes()}" if counts.errors_by_route else ""
    report(f"{counts.line(name)} [{what}; {took:.0f} s]{retried}\n  then: {findings.summary()}")
    assert counts.accepted > 0, counts
    assert counts.lost == 0, (counts, platform.output())
    assert not counts.unfinished and not counts.other_final, counts
    assert findings.problems == [], f"{findings.problems}\n{platform.output()}"
    # And the platform recovered: an application made afterwards has the materials the
    # government holds fetched (the population register is federated to no system: asked).
    held = [m for m in probe["materials"] if m["source"] == "dataset" and m["key"] != "population"]
    assert held, probe["materials"]
    assert probe["status"] == "completed", probe["status"]
    assert {m["state"] for m in held} == {"fetched"}, (held, platform.output())
    return counts


async def _nats_outage(platform: FaultPlatform, traffic: Traffic) -> str:
    await asyncio.to_thread(platform.stop_nats)
    stopped = time.monotonic()
    await asyncio.sleep(NATS_DOWN_S)
    await asyncio.to_thread(platform.start_nats)
    return f"NATS stopped for {time.monotonic() - stopped:.1f} s"


async def _back(platform: FaultPlatform, part: str, victim: int, what: str) -> str:
    """Wait for the supervisor to bring ``part`` back; the fault described."""
    took = await asyncio.to_thread(platform.wait_restarted, part, victim)
    restarts = platform.state()["parts"][part]["restarts"]
    return f"{part} SIGKILLed with {what}, back in {took:.1f} s (restart {restarts})"


async def _workflow_killed(platform: FaultPlatform, traffic: Traffic) -> str:
    # Killed with a submission in flight (at most 3 s more of the stream to have one).
    for _ in range(60):
        if traffic.submitting_now >= 1:
            break
        await asyncio.sleep(0.05)
    in_flight = traffic.submitting_now
    victim = platform.kill("workflow")
    return await _back(platform, "workflow", victim, f"{in_flight} submission(s) in flight")


async def _exchange_killed_mid_fetch(platform: FaultPlatform, traffic: Traffic) -> str:
    # Freeze exchange first, so the submissions arriving meanwhile are waiting on their
    # material fetches (workflow's exchange timeout is 5 s) when it is killed.
    platform.freeze("exchange")
    for _ in range(60):  # at most 3 s
        await asyncio.sleep(0.05)
        if traffic.submitting_now >= 2:
            break
    await asyncio.sleep(0.3)
    fetching = traffic.submitting_now
    victim = platform.kill("exchange")
    return await _back(platform, "exchange", victim, f"{fetching} submission(s) fetching")


async def _databases_locked(platform: FaultPlatform, traffic: Traffic) -> str:
    await asyncio.to_thread(platform.hold_write_locks, LOCKED_DATABASES, LOCK_HELD_S)
    return f"{', '.join(LOCKED_DATABASES)} databases write-locked for {LOCK_HELD_S:.0f} s"


def test_a_nats_stopped_for_ten_seconds(
    platform: FaultPlatform, people: People, accepted: set[str]
) -> None:
    _run("(a) NATS stopped", _nats_outage, platform, people, accepted)


def test_b_workflow_killed(platform: FaultPlatform, people: People, accepted: set[str]) -> None:
    _run("(b) workflow SIGKILL", _workflow_killed, platform, people, accepted)


def test_c_exchange_killed_mid_fetch(
    platform: FaultPlatform, people: People, accepted: set[str]
) -> None:
    counts = _run("(c) exchange SIGKILL", _exchange_killed_mid_fetch, platform, people, accepted)
    # The fault hit where it was meant to: some accepted application had a fetch cut off.
    assert counts.fetch_pending_at_submit >= 1, counts


def test_d_databases_briefly_unwritable(
    platform: FaultPlatform, people: People, accepted: set[str]
) -> None:
    _run("(d) databases locked", _databases_locked, platform, people, accepted)

"""The platform the fault suite hurts (one per module) and the report of what each fault did."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.faults.platform import FaultPlatform
from tests.faults.traffic import People

# One line per fault: accepted, completed, lost, and what the checks compared.
REPORT: list[str] = []


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultPlatform]:
    started = time.monotonic()
    up = FaultPlatform(tmp_path_factory.mktemp("faults"))
    try:
        up.wait_ready()
        ready = time.monotonic()
        up.seed()
        REPORT.append(
            f"platform ready in {ready - started:.0f} s, demo province (lean) loaded in "
            f"{time.monotonic() - ready:.0f} s; data and log in {up.workdir}"
        )
        yield up
    finally:
        up.close()


@pytest.fixture(scope="module")
def people(platform: FaultPlatform) -> People:
    signed = People(platform.gateway)
    asyncio.run(signed.refresh())
    return signed


@pytest.fixture(scope="module")
def accepted() -> set[str]:
    """Every application accepted so far in the module, across faults."""
    return set()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("fault suite: accepted, completed, lost per fault")
        for line in REPORT:
            terminalreporter.write_line(line)

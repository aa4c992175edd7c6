"""The platform the fault suite hurts (one per module) and the report of what each fault did.

The figures are reported as `FaultCounts` warnings (traffic.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest

from pingtai.parts import PARTS
from tests.conftest import BACKENDS, _create_postgres_database, _drop_postgres_database
from tests.faults.platform import FaultPlatform
from tests.faults.traffic import People, report

# On PostgreSQL the module is a platform of its own and about 4 more minutes on the worker that
# runs the real processes: it runs there on purpose, with PINGTAI_TEST_FAULTS_POSTGRES=1 beside
# PINGTAI_TEST_POSTGRES_URL (docs/faults.md).
FAULT_BACKENDS = BACKENDS if os.environ.get("PINGTAI_TEST_FAULTS_POSTGRES") == "1" else ["sqlite"]


@pytest.fixture(scope="module", params=FAULT_BACKENDS)
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultPlatform]:
    """`pingtai up` on SQLite files, and on PostgreSQL (a database per part) when asked."""
    started = time.monotonic()
    postgres: dict[str, str] = {}
    if request.param == "postgresql":
        urls = asyncio.run(_postgres_databases(len(PARTS)))
        postgres = {part.name: url for part, url in zip(PARTS, urls, strict=True)}
    try:
        up = FaultPlatform(tmp_path_factory.mktemp("faults"), postgres)
    except BaseException:
        asyncio.run(_drop(postgres))
        raise
    try:
        up.wait_ready()
        ready = time.monotonic()
        up.seed()
        report(
            f"{request.param}: platform ready in {ready - started:.0f} s, demo province (lean) "
            f"loaded in {time.monotonic() - ready:.0f} s; data {up.workdir}, log {up.log_file}"
        )
        yield up
    finally:
        up.close()
        asyncio.run(_drop(postgres))


async def _postgres_databases(count: int) -> list[str]:
    return list(await asyncio.gather(*(_create_postgres_database() for _ in range(count))))


async def _drop(postgres: dict[str, str]) -> None:
    await asyncio.gather(*(_drop_postgres_database(url) for url in postgres.values()))


@pytest.fixture(scope="module")
def people(platform: FaultPlatform) -> People:
    signed = People(platform.gateway)
    asyncio.run(signed.refresh())
    return signed


@pytest.fixture(scope="module")
def accepted() -> set[str]:
    """Every application accepted so far in the module, across faults."""
    return set()

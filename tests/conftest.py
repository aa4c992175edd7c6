"""Fixtures shared by every test: databases on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import structlog
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("PINGTAI_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep a developer's PINGTAI_* variables out of tests and their files in a temporary folder."""
    for name in list(os.environ):
        if name.startswith("PINGTAI_") and name != "PINGTAI_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PINGTAI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PINGTAI_ENV", "test")
    # The module-level access loggers (the parts' middleware's, the gateway's forwarder's) bind
    # to the logging configuration of their first use and keep it (cache_logger_on_first_use):
    # after another test's app, on the same xdist worker, configured logging its way, a test
    # capturing the access line would see nothing. Each test gets fresh ones.
    for holder in ("libs.common.middleware", "gateway.forwarding"):
        monkeypatch.setattr(f"{holder}.access_log", structlog.get_logger("pingtai.access"))
    yield


async def _create_postgres_database() -> str:
    base = make_url(POSTGRES_URL)
    name = f"pingtai_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username,
        password=base.password, database=base.database,
    )  # fmt: skip
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return base.set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    base = make_url(POSTGRES_URL)
    name = make_url(url).database
    admin = await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username,
        password=base.password, database=base.database,
    )  # fmt: skip
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, and a fresh PostgreSQL database when one is configured."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


# --- Parallel runs (pytest-xdist) ---------------------------------------------------------------
# `make test` runs the suite on every core (`-n auto`; pyproject adds `--dist loadscope
# --no-loadscope-reorder`). Each worker is a process of its own, with its own temporary folders
# (tmp_path), PINGTAI_VAR_DIR (the autouse fixture above), free ports and PostgreSQL databases (a
# random name each, dropped only by the fixture that made it). The controller hands the tests out
# in work units (`work_unit`): a unit runs whole on one worker, in collection order, so a fixture
# its tests share is made once, as in a serial run. A serial run (`-n0`) uses nothing below.

# Suites that run real processes (`pingtai up`, nats-server, Chromium): one unit, so they run one
# after another on one worker (never two platforms at once on a 2-core machine), and first, so the
# in-process units fill the other worker meanwhile and both workers end together.
REAL_PROCESSES = ("tests/e2e/", "tests/faults/", "tests/portal/")
REAL_PROCESSES_UNIT = "real-processes"
# Packages whose shared fixture is package-scoped and parametrised by backend (authz's `worlds`):
# one unit per backend for the whole package.
PACKAGE_UNITS = ("tests/authz/",)
# Modules whose first two test parameters are the backend and the part: the fuzz keeps one app
# per backend and part for the session (tests/hostile/fuzzing.py, Targets), whose two tests share
# one run of schemathesis.
SPLIT_BY_BACKEND_AND_PART = ("tests/hostile/test_openapi_fuzz.py",)


def work_unit(nodeid: str) -> str:
    """The unit of work of the test ``nodeid``: its module (or package), and within it its
    database backend (the first test parameter naming one): the fixtures that start every part
    (the hostile suite's ``parts``, authz's ``worlds``) are parametrised by backend, so each is
    made on one worker only. Computed from the test id alone: the controller has nothing else."""
    path, _, name = nodeid.partition("::")
    if path.startswith(REAL_PROCESSES):
        return REAL_PROCESSES_UNIT
    parameters = name.partition("[")[2].rpartition("]")[0].split("-")
    if path in SPLIT_BY_BACKEND_AND_PART:
        return ":".join([path, *parameters[:2]])
    path = next((package for package in PACKAGE_UNITS if path.startswith(package)), path)
    backend = next((p for p in parameters if p in ("sqlite", "postgresql")), None)
    return f"{path}:{backend}" if backend else path


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pytest-xdist is a dev dependency; without it the suite runs serially
    pass
else:

    class WorkUnitScheduling(LoadScopeScheduling):  # type: ignore[misc]
        """xdist's loadscope, with ``work_unit`` as the scope (its own is the module or class;
        xdist's loadgroup marks do not reach the scheduler under pytest 9.2, xdist issue 1386)."""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
        if config.getvalue("dist") != "loadscope":
            return None  # another --dist chosen on the command line: xdist's own
        return WorkUnitScheduling(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """On an xdist worker, after every other hook: order the units for the scheduler, which hands
    them out in collection order (`--no-loadscope-reorder`): the real processes first, then the
    largest units, so no long unit is left for the end. Within a unit the order is pytest's."""
    yield
    if not hasattr(config, "workerinput"):
        return
    units = {id(item): work_unit(item.nodeid) for item in items}
    sizes = Counter(units.values())
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(units[id(item)], index)

    def order(item: pytest.Item) -> tuple[bool, int, int]:
        unit = units[id(item)]
        return unit != REAL_PROCESSES_UNIT, -sizes[unit], first_seen[unit]

    items.sort(key=order)

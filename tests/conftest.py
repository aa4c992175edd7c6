"""Fixtures shared by every test: databases on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
import structlog
from sqlalchemy.engine import make_url

from libs.common.migrations import migrate

if TYPE_CHECKING:
    from tests.e2e.test_up import Up

POSTGRES_URL = os.environ.get("PINGTAI_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]
DATABASE_PREFIX = "pingtai_test_"  # the PostgreSQL databases the tests make (and drop)


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


async def _admin() -> asyncpg.Connection:
    """A connection to the configured PostgreSQL database, to make and drop others."""
    base = make_url(POSTGRES_URL)
    return await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username,
        password=base.password, database=base.database,
    )  # fmt: skip


async def _create_postgres_database() -> str:
    name = f"{DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = await _admin()
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


# --- Migrated databases, copied ---------------------------------------------------------------
# Running a part's Alembic migrations takes 0.3-1 s on SQLite and 1-2 s on PostgreSQL here; most
# tests start on a freshly migrated database. `migrated` runs the migrations once per process
# (xdist worker), part and backend, into a template, and gives each test a copy of it: SQLite's
# file copied, PostgreSQL's `CREATE DATABASE ... TEMPLATE` (about 0.3 s). The schema is what the
# migrations made, in this run: tests/test_migrations.py proves the migrations themselves
# (upgrade, downgrade, the models' schema) on fresh databases, without copies.
_TEMPLATES: dict[tuple[str, str], str] = {}  # (part's package, backend) -> file or database
_TEMPLATES_MADE = threading.Lock()  # `migrated` runs in threads (asyncio.to_thread)


def migrated(package: str, database_url: str) -> None:
    """Bring the empty database at ``database_url`` (a new SQLite file, or a database made by
    ``database_url``) to ``package``'s head: a copy of a database migrated once (blocking)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        target = Path(url.database or "")
        if not url.database or target.exists():  # in memory, or not empty: the migrations
            migrate(package, database_url)
            return
        target.write_bytes(Path(_sqlite_template(package)).read_bytes())
        return
    if not (url.database or "").startswith(DATABASE_PREFIX):  # not one of ours: the migrations
        migrate(package, database_url)
        return
    asyncio.run(_copy_postgres_template(_postgres_template(package), url.database or ""))


def _sqlite_template(package: str) -> str:
    key = (package, "sqlite")
    with _TEMPLATES_MADE:
        if key not in _TEMPLATES:
            _TEMPLATES[key] = _make_sqlite_template(package)
    return _TEMPLATES[key]


def _make_sqlite_template(package: str) -> str:
    folder = Path(tempfile.mkdtemp(prefix="pingtai-templates-"))
    path = folder / f"{package}.db"
    migrate(package, f"sqlite+aiosqlite:///{path}")
    with sqlite3.connect(path) as connection:  # everything in the file, none in its WAL
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return str(path)


def _postgres_template(package: str) -> str:
    key = (package, "postgresql")
    with _TEMPLATES_MADE:
        if key not in _TEMPLATES:
            url = asyncio.run(_create_postgres_database())
            migrate(package, url)
            _TEMPLATES[key] = make_url(url).database or ""
    return _TEMPLATES[key]


async def _copy_postgres_template(template: str, name: str) -> None:
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove this process's templates."""
    for (_, backend), template in _TEMPLATES.items():
        if backend == "sqlite":
            shutil.rmtree(Path(template).parent, ignore_errors=True)
        else:
            asyncio.run(
                _drop_postgres_database(
                    make_url(POSTGRES_URL)
                    .set(database=template)
                    .render_as_string(hide_password=False)
                )
            )
    _TEMPLATES.clear()


# --- The demo platform ---------------------------------------------------------------------------
# `pingtai up` on free ports with the demo province loaded (`pingtai seed --demo`), shared by the
# tests that only use it (tests/e2e/test_apply_once.py, the portal's browser tests): starting and
# seeding one is most of a minute on this machine. They run one after another (REAL_PROCESSES_
# ORDER); the platform starts for the first of them and stops after the last, before the worker
# goes on with in-process tests (a session fixture would stay up until the session's end).
DEMO_SEED_LINES = ("3 one-thing bundles", "records in 5 hosted datasets", "the workflow client")


@dataclass
class _Demo:
    up: Up | None = None
    folder: Path | None = None
    failed: str = ""  # why it did not start: the other tests needing it fail at once


_DEMO = _Demo()


@pytest.fixture
def demo_gateway() -> str:
    """The demo platform's public URL (PORTAL_TEST_GATEWAY: a platform already up and seeded)."""
    given = os.environ.get("PORTAL_TEST_GATEWAY")
    if given:
        return given.rstrip("/")
    if _DEMO.failed:
        pytest.fail(f"the demo platform did not start:\n{_DEMO.failed}")
    if _DEMO.up is None:
        try:
            _start_demo_platform()
        except BaseException as exc:
            _DEMO.failed = str(exc)
            stop_demo_platform()
            raise
    assert _DEMO.up is not None
    return _DEMO.up.gateway


def _start_demo_platform() -> None:
    from tests.e2e.test_up import Up

    _DEMO.folder = Path(tempfile.mkdtemp(prefix="pingtai-demo-"))
    _DEMO.up = up = Up(_DEMO.folder)
    up.wait_for_line("ready in")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGTAI_")}
    env["PINGTAI_VAR_DIR"] = str(_DEMO.folder / "var")
    # The demo seed is idempotent; on a loaded machine a step may time out: once more.
    for _ in range(2):
        seeded = subprocess.run(
            [sys.executable, "-m", "pingtai", "seed", "--demo", "--gateway", up.gateway],
            cwd=_DEMO.folder, capture_output=True, text=True, timeout=180, env=env,
        )  # fmt: skip
        if all(line in seeded.stdout for line in DEMO_SEED_LINES):
            return
    raise AssertionError(f"the demo seed failed:\n{seeded.stdout}{seeded.stderr[-3000:]}")


def stop_demo_platform() -> None:
    """Stop the demo platform if it is up (a no-op otherwise)."""
    up, folder = _DEMO.up, _DEMO.folder
    _DEMO.up = _DEMO.folder = None
    try:
        if up is not None:
            up.stop()
    finally:
        if up is not None and up.process.stdout is not None:
            up.process.stdout.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last test of the real processes (the next is none, or in process)."""
    if nextitem is None or _real_order(nextitem) == -1:
        stop_demo_platform()


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
# Their order within the unit (and in a serial run): the fault suite's platform, then test_up's,
# then the demo platform the remaining e2e and portal tests share (`demo_gateway`), last, so no
# two platforms are up at once.
REAL_PROCESSES_ORDER = ("tests/faults/", "tests/e2e/test_up.py", "tests/e2e/", "tests/portal/")
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


def _real_order(item: pytest.Item) -> int:
    """The place of ``item``'s suite in REAL_PROCESSES_ORDER (-1: an in-process test)."""
    path = item.nodeid.partition("::")[0]
    return next((i for i, p in enumerate(REAL_PROCESSES_ORDER) if path.startswith(p)), -1)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """On an xdist worker, after every other hook: order the units for the scheduler, which hands
    them out in collection order (`--no-loadscope-reorder`): the real processes first, then the
    largest units, so no long unit is left for the end. Within a unit the order is pytest's,
    but for the real processes' (REAL_PROCESSES_ORDER), which a serial run also keeps (last)."""
    yield
    if not hasattr(config, "workerinput"):
        items.sort(key=_real_order)
        return
    units = {id(item): work_unit(item.nodeid) for item in items}
    sizes = Counter(units.values())
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(units[id(item)], index)

    def order(item: pytest.Item) -> tuple[bool, int, int, int]:
        unit = units[id(item)]
        return unit != REAL_PROCESSES_UNIT, -sizes[unit], first_seen[unit], _real_order(item)

    items.sort(key=order)

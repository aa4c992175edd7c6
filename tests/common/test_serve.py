"""Serving a part: one process, or PINGTAI_<PART>_WORKERS processes on one port."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from libs.common import serve as serve_module
from libs.common.database import create_engine
from pingtai import cli
from pingtai.natsserver import free_port
from tests.common.conftest import SampleSettings, build_app
from tests.common.sample_part import Base

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    # serve() sets PINGTAI_GC_FREEZE for the server process: restored after the test (unset).
    monkeypatch.setenv("PINGTAI_GC_FREEZE", "")
    monkeypatch.delenv("PINGTAI_GC_FREEZE")
    return calls


def test_one_worker_by_default_and_the_same_options_with_more(
    monkeypatch: pytest.MonkeyPatch, runs: list[tuple[str, dict[str, Any]]]
) -> None:
    serve_module.serve("tests.common.sample_part:create_app", SampleSettings())
    monkeypatch.setenv("PINGTAI_SAMPLE_WORKERS", "3")
    serve_module.serve("tests.common.sample_part:create_app", SampleSettings())
    (app_one, one), (app_three, three) = runs
    assert app_one == app_three == "tests.common.sample_part:create_app"
    assert one.pop("workers") == 1
    assert three.pop("workers") == 3
    assert one == three
    assert one["factory"] is True and one["access_log"] is False and one["port"] == 8000


def test_a_served_part_freezes_its_start_up_heap_unless_the_operator_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, runs: list[tuple[str, dict[str, Any]]]
) -> None:
    serve_module.serve("tests.common.sample_part:create_app", SampleSettings())
    assert os.environ["PINGTAI_GC_FREEZE"] == "true"
    assert SampleSettings().gc_freeze is True  # what the server process's app reads
    monkeypatch.setenv("PINGTAI_GC_FREEZE", "false")
    serve_module.serve("tests.common.sample_part:create_app", SampleSettings())
    assert os.environ["PINGTAI_GC_FREEZE"] == "false"


async def test_the_start_up_heap_is_frozen_only_when_the_setting_says_so() -> None:
    gc.unfreeze()
    try:
        quiet = build_app(gc_freeze=False)
        async with quiet.router.lifespan_context(quiet):
            assert gc.get_freeze_count() == 0
        frozen = build_app(gc_freeze=True)
        async with frozen.router.lifespan_context(frozen):
            # Everything start-up made (and the modules before it) left the generations.
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # this test process builds many more apps


def test_workers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("0", "65", "two"):
        monkeypatch.setenv("PINGTAI_SAMPLE_WORKERS", bad)
        with pytest.raises(ValueError, match="workers"):
            SampleSettings()


def test_pingtai_serve_takes_workers_from_the_option_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, runs: list[tuple[str, dict[str, Any]]]
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli.app, ["serve", "catalog"]).exit_code == 0
    monkeypatch.setenv("PINGTAI_CATALOG_WORKERS", "2")
    assert runner.invoke(cli.app, ["serve", "catalog"]).exit_code == 0
    assert runner.invoke(cli.app, ["serve", "catalog", "--workers", "4"]).exit_code == 0
    assert runner.invoke(cli.app, ["serve", "catalog", "--workers", "0"]).exit_code != 0
    assert [(app, options["workers"]) for app, options in runs] == [
        ("services.catalog.app:create_app", 1),
        ("services.catalog.app:create_app", 2),
        ("services.catalog.app:create_app", 4),
    ]


def _workers(pid: int) -> set[int]:
    """The worker processes of the uvicorn supervisor ``pid`` (not multiprocessing's tracker)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"resource_tracker" not in command:
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sample.db'}"

    async def create_tables() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        await engine.dispose()

    asyncio.run(create_tables())
    port = free_port()
    env = {
        **os.environ,
        "PINGTAI_SAMPLE_WORKERS": "2",
        "PINGTAI_SAMPLE_PORT": str(port),
        "PINGTAI_SAMPLE_DATABASE_URL": url,
        "PINGTAI_LOG_LEVEL": "WARNING",
    }
    code = (
        "from libs.common.serve import serve; from tests.common.conftest import SampleSettings; "
        "serve('tests.common.sample_part:create_app', SampleSettings())"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


async def _write_many(base: str, count: int) -> tuple[list[int], set[int]]:
    statuses: list[int] = []
    pids: set[int] = set()
    # Many short-lived connections, so the kernel hands them to both workers.
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def one(n: int) -> None:
            response = await client.post(f"/v1/notes/n{n}")
            statuses.append(response.status_code)
            if response.status_code == 201:
                pids.add(response.json()["pid"])

        await asyncio.gather(*(one(n) for n in range(count)))
    return statuses, pids


def test_two_workers_share_the_port_and_write_one_sqlite_file(
    two_workers: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, server = two_workers
    workers = _workers(server.pid)
    assert len(workers) == 2, workers
    statuses, pids = asyncio.run(_write_many(base, 300))
    # Both processes wrote at once to one SQLite file: every write landed, none failed.
    assert statuses == [201] * 300
    assert pids == workers
    counted = httpx.get(f"{base}/v1/notes", timeout=5).json()
    assert counted["count"] == 300
    # Stopping the supervisor stops its workers.
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)

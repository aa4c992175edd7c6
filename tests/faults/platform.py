"""The platform under fire: `pingtai up` on free ports, its NATS server held by the test.

NATS runs outside the supervisor (as in production, where it is its own service) so the test can
stop it for ten seconds and start it again on the same port and store; everything else is what
`pingtai up` runs. The demo province is loaded lean: only what the "open a business" bundle
(开办企业一件事) needs (people, datasets, its four items and the bundle, records, grants and
workflow's client), through the gateway as `pingtai seed --demo` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

from pingtai.demo import catalog_items
from pingtai.demo.catalog_datasets import seed_catalog_datasets
from pingtai.demo.exchange_grants import seed_exchange_grants
from pingtai.demo.exchange_records import seed_exchange_records
from pingtai.demo.identity import seed_identity
from pingtai.demo.workflow import _org_ids, ensure_workflow_client
from pingtai.natsserver import NatsServer, free_port
from pingtai.seed import ADMIN_CLIENT_ID, DEV_ADMIN_CLIENT_SECRET, admin_token
from tests.e2e.test_up import _free_port_base

BUNDLE = "zj-bundle-open-business"
READY_TIMEOUT_S = 120.0
RESTART_TIMEOUT_S = 60.0
# Workflow retries fetches exchange could not answer every 2 s instead of 10 s, so a phase ends
# sooner; the code path is the default's.
ENVIRONMENT = {
    "PINGTAI_WORKFLOW_FETCH_RETRY_INTERVAL_S": "2",
    "PINGTAI_LOG_LEVEL": "WARNING",
}


class FaultPlatform:
    """`pingtai up` with an external NATS server, and the means to hurt both."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.var_dir = workdir / "var"
        self.port_base = _free_port_base()
        self.gateway = f"http://127.0.0.1:{self.port_base}"
        self.lines: list[str] = []
        self.frozen: set[int] = set()
        self.nats = NatsServer(store_dir=workdir / "nats", port=free_port())
        self.nats.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGTAI_")}
        env.update(ENVIRONMENT)
        env["PINGTAI_VAR_DIR"] = str(self.var_dir)
        env["PINGTAI_NATS_URL"] = self.nats.url
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pingtai", "up", "--port-base", str(self.port_base)],
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # -- the processes -------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self, last: int = 60) -> str:
        return "\n".join(self.lines[-last:])

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if any("ready in" in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"pingtai up did not become ready:\n{self.output()}")

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.var_dir / "pingtai-up.json").read_text())
        return state

    def pid(self, part: str) -> int:
        pid: int = self.state()["parts"][part]["pid"]
        return pid

    def url(self, part: str) -> str:
        url: str = self.state()["parts"][part]["url"]
        return url

    def freeze(self, part: str) -> int:
        """SIGSTOP a part: it accepts connections (the kernel does) and answers nothing."""
        pid = self.pid(part)
        os.kill(pid, signal.SIGSTOP)
        self.frozen.add(pid)
        return pid

    def kill(self, part: str) -> int:
        """SIGKILL a part, as the OOM killer would; the supervisor restarts it."""
        pid = self.pid(part)
        os.kill(pid, signal.SIGKILL)
        self.frozen.discard(pid)
        return pid

    def wait_restarted(self, part: str, old_pid: int) -> float:
        """Seconds until the supervisor's new process of ``part`` answers /readyz."""
        started = time.monotonic()
        deadline = started + RESTART_TIMEOUT_S
        while time.monotonic() < deadline:
            info = self.state()["parts"][part]
            if info["pid"] != old_pid:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{info['url']}/readyz", timeout=2).status_code == 200:
                        return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"{part} was not restarted:\n{self.output()}")

    def stop_nats(self) -> None:
        self.nats.stop()

    def start_nats(self) -> None:
        self.nats.start(timeout=30.0)

    @contextlib.contextmanager
    def database_locked(self, *parts: str) -> Iterator[None]:
        """Hold SQLite's write lock on each part's database: its writes wait, then fail."""
        connections = []
        try:
            for part in parts:
                connection = sqlite3.connect(self.var_dir / f"{part}.db", timeout=30)
                connection.execute("BEGIN EXCLUSIVE")
                connections.append(connection)
            yield
        finally:
            for connection in connections:
                connection.rollback()
                connection.close()

    def close(self) -> None:
        """Stop everything this platform started, whatever state the test left it in."""
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen.clear()
        if self.nats.process is None or self.nats.process.poll() is not None:
            with contextlib.suppress(Exception):
                self.start_nats()  # so the parts stop cleanly (they drain their connection)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=5)
        self.nats.stop()
        # Kept beside the databases for a post-mortem (pytest keeps the last runs' folders).
        (self.workdir / "pingtai-up.log").write_text("\n".join(self.lines) + "\n")

    # -- the demo province, lean ---------------------------------------------------------------

    def seed(self) -> None:
        with mock.patch.dict(os.environ, {"PINGTAI_VAR_DIR": str(self.var_dir)}):
            asyncio.run(_seed(self.gateway))


async def _seed_bundle(client: httpx.AsyncClient, say: Any) -> int:
    """The "open a business" bundle and its four items, published (catalog's demo step, lean)."""
    [(code, name, description, item_codes)] = [b for b in catalog_items.BUNDLES if b[0] == BUNDLE]
    owners = await catalog_items._department_ids(client)
    datasets = await catalog_items._dataset_ids(client)
    ids = {}
    for item in catalog_items.ITEMS:
        if item.code in item_codes:
            body = catalog_items._body(item, owners, datasets)
            ids[item.code] = await catalog_items._ensure(client, "items", body)
    bundle = {"code": code, "name": name, "description": description,
              "item_ids": [ids[c] for c in item_codes]}  # fmt: skip
    await catalog_items._ensure(client, "bundles", bundle)
    return len(ids) + 1


async def _seed(gateway: str) -> None:
    def say(_: str) -> None:
        pass

    async with httpx.AsyncClient(base_url=gateway, timeout=60.0) as client:
        client.headers["Authorization"] = "Bearer " + await admin_token(
            client, client_id=ADMIN_CLIENT_ID, client_secret=DEV_ADMIN_CLIENT_SECRET
        )
        for step in (seed_identity, seed_catalog_datasets, _seed_bundle, seed_exchange_records,
                     seed_exchange_grants):  # fmt: skip
            await step(client, say)
        orgs = await _org_ids(client)
        await ensure_workflow_client(client, orgs.get("data"))

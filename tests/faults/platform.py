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
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
import httpx
from asyncpg.exceptions import DeadlockDetectedError, LockNotAvailableError
from sqlalchemy.engine import make_url

from pingtai.demo import catalog_items
from pingtai.demo.catalog_datasets import seed_catalog_datasets
from pingtai.demo.exchange_grants import seed_exchange_grants
from pingtai.demo.exchange_records import seed_exchange_records
from pingtai.demo.identity import seed_identity
from pingtai.demo.workflow import _org_ids, ensure_workflow_client
from pingtai.natsserver import NatsServer, free_port
from pingtai.parts import PARTS
from pingtai.seed import ADMIN_CLIENT_ID, DEV_ADMIN_CLIENT_SECRET, admin_token
from tests.e2e.test_up import Up

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

    def __init__(self, workdir: Path, postgres: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.var_dir = workdir / "var"
        self.postgres = postgres or {}  # part -> its PostgreSQL database; SQLite files otherwise
        self.frozen: set[int] = set()
        env = {**ENVIRONMENT, **{f"{p.env_prefix}DATABASE_URL": self.postgres[p.name]
                                 for p in PARTS if p.name in self.postgres}}  # fmt: skip
        self.nats = NatsServer(store_dir=workdir / "nats", port=free_port())
        self.nats.start()
        env["PINGTAI_NATS_URL"] = self.nats.url
        self.env = env
        try:
            self.up = Up(workdir, env=env)
        except BaseException:
            self.nats.stop()
            raise
        self.gateway = self.up.gateway
        backend = "postgresql" if self.postgres else "sqlite"
        self.log_file = Path(tempfile.gettempdir()) / "pingtai-faults" / f"{backend}-pingtai-up.log"

    # -- the processes -------------------------------------------------------------------------

    def output(self, last: int = 60) -> str:
        return "\n".join(self.up.lines[-last:])

    def wait_ready(self) -> None:
        for attempt in range(3):
            try:
                self.up.wait_for_line("ready in", timeout=READY_TIMEOUT_S)
                return
            except AssertionError:
                # Another process took one of the seven ports after they were found free (an
                # outgoing connection's ephemeral port): again on other ports.
                if attempt == 2 or not any("ports in use" in line for line in self.up.lines):
                    raise
                self.up.stop()
                if self.up.process.stdout is not None:
                    self.up.process.stdout.close()
                self.up = Up(self.workdir, env=self.env)
                self.gateway = self.up.gateway

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.up.state()
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

    def hold_write_locks(self, parts: tuple[str, ...], seconds: float) -> None:
        """Make each part's database unwritable for ``seconds`` (blocking): SQLite's write lock
        (its writers wait out their busy timeout, then fail), or on PostgreSQL an EXCLUSIVE lock
        on every table (writes wait; reads go on)."""
        if self.postgres:
            asyncio.run(_lock_postgres([self.postgres[p] for p in parts], seconds))
            return
        connections = []
        try:
            for part in parts:
                connection = sqlite3.connect(self.var_dir / f"{part}.db", timeout=30)
                connection.execute("BEGIN EXCLUSIVE")
                connections.append(connection)
            time.sleep(seconds)
        finally:
            for connection in connections:
                connection.rollback()
                connection.close()

    async def rows(self, part: str, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a read-only query on a part's database (the checks look at the outbox)."""
        if self.postgres:
            connection = await asyncpg.connect(_dsn(self.postgres[part]))
            try:
                return [tuple(row) for row in await connection.fetch(sql)]
            finally:
                await connection.close()
        path = self.var_dir / f"{part}.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            return list(db.execute(sql))

    def close(self) -> None:
        """Stop everything this platform started, whatever state the test left it in."""
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen.clear()
        if self.nats.process is None or self.nats.process.poll() is not None:
            with contextlib.suppress(Exception):
                self.start_nats()  # so the parts stop cleanly (they drain their connection)
        try:
            self.up.stop()
        except subprocess.TimeoutExpired:
            self.up.process.kill()
            self.up.process.wait()
        if self.up.process.stdout is not None:
            self.up.process.stdout.close()
        self.nats.stop()
        # Kept for a post-mortem where pytest's rotation of temporary folders does not reach.
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.write_text("\n".join(self.up.lines) + "\n")

    # -- the demo province, lean ---------------------------------------------------------------

    def seed(self) -> None:
        """The lean demo province, through the gateway."""
        with mock.patch.dict(os.environ, {"PINGTAI_VAR_DIR": str(self.var_dir)}):
            asyncio.run(_seed(self.gateway))


LOCK_WAIT = "2s"
LOCK_ATTEMPTS = 15
# Who holds a lock on a table of this database (what the lock waited for), for the failure.
LOCK_HOLDERS = """
SELECT a.application_name, a.state, now() - a.xact_start AS in_transaction, l.mode,
       c.relname, left(a.query, 200) AS query
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND a.pid <> pg_backend_pid() AND a.datname = current_database()
  AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                 'AccessExclusiveLock', 'ShareLock', 'ShareUpdateExclusiveLock')
"""


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _lock_postgres(urls: list[str], seconds: float) -> None:
    connections = []
    try:
        for url in urls:
            connection = await asyncpg.connect(_dsn(url))
            connections.append(connection)
            tables = [r[0] for r in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]  # fmt: skip
            quoted = ", ".join('"' + t.replace('"', '""') + '"' for t in tables)
            # Taken table by table, the locks could deadlock with the part's own transactions:
            # give up after a moment and try again, all or nothing (bounded). The wait is long
            # enough for the part's transactions in progress to end (new ones queue behind it).
            for attempt in range(LOCK_ATTEMPTS):
                await connection.execute(f"BEGIN; SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                try:
                    await connection.execute(f"LOCK TABLE {quoted} IN EXCLUSIVE MODE")
                    break
                except (LockNotAvailableError, DeadlockDetectedError) as exc:
                    await connection.execute("ROLLBACK")
                    if attempt == LOCK_ATTEMPTS - 1:
                        holders = await connection.fetch(LOCK_HOLDERS)
                        raise AssertionError(
                            f"no lock on {url}'s tables: {exc}; held by {holders}"
                        ) from exc
        await asyncio.sleep(seconds)
    finally:
        for connection in connections:
            await connection.close()  # ends the transaction and its locks


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

"""`pingtai up`: NATS, migrations and every part as its own process, supervised.

``pingtai up`` reads its options and then becomes ``python -m pingtai.supervise`` in the same
process (``exec``): the long-lived supervisor holds asyncio, h11 and this module, nothing more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11

from pingtai.natsserver import (
    STORE_CIPHERS,
    STORE_KEY_VARIABLE,
    NatsServer,
    free_port,
    port_is_free,
    store_key,
)
from pingtai.parts import PART_NAMES, PARTS, Part

STATE_FILE = "pingtai-up.json"
READY_TIMEOUT_S = 60.0
NATS_READY_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 2.0
STOP_TIMEOUT_S = 10.0
BACKOFF_MAX_S = 30.0
# A part that stayed up this long is healthy again: its next crash restarts it at once.
STABLE_AFTER_S = 60.0
DEFAULT_NATS_PORT = 4250

# glibc's malloc for the parts (docs/operations.md, "Memory on one machine"): a block of 128 KiB
# or more is mapped on its own and unmapped when freed, always. By default glibc raises that bar
# after the first such free, up to 32 MiB, so a large buffer freed once stays on the heap: the
# identity part kept the 19 MiB of argon2id's last password hash (a worker thread's heap, which
# malloc_trim cannot shrink). An operator's own GLIBC_TUNABLES is left as it is.
PART_GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=131072"
# For a part with ``huge_pages`` (identity) malloc also asks for transparent huge pages (THP is
# "madvise" on Debian), which keep the cost of mapping argon2id's buffer anew low: 24 ms of CPU
# per verification, 40 ms with 4 KiB pages. The other parts map no such buffer, and huge pages
# on their heaps held 18-27 MB each of 2 MiB pages, ~1 MB a part more resident than 4 KiB pages.
HUGE_PAGES_GLIBC_TUNABLES = PART_GLIBC_TUNABLES + ":glibc.malloc.hugetlb=1"

# The embedded nats-server's soft memory limit (Go's GOMEMLIMIT; an operator's own is kept): Go
# collects garbage only when its heap has doubled and returns freed memory to the system slowly,
# so without a limit the server's resident memory follows the traffic it has seen, not the data it
# holds (18,000 events of 1.2 KB with six consumers: 16 -> 64 MB; with this limit 16 -> 41 MB).
# What a busy stream holds in memory besides is the block being written, bounded by the block
# size its stream's configuration gives it (libs/common/events/streams.py). A tighter limit
# (20 MiB) only made the server collect ~60 times a second: 261 ms of CPU per soak flow, not 57.
NATS_GOMEMLIMIT = "32MiB"
# ... and collects when its heap has grown by a quarter, not doubled (Go's GOGC; an operator's
# own is kept): the heap's headroom over the block being written swung the resident memory with
# each block (soak: 33-41 MB with GOGC 100, 29-35 with 50, 25-36 with 25; docs/operations.md).
NATS_GOGC = "25"
# The embedded JetStream store can be encrypted at rest (PINGTAI_NATS_STORE_CIPHER: chachapoly,
# aes or none, the default), with the operator's PINGTAI_NATS_STORE_KEY or else a random key made
# once into <var>/nats/store.key. It keeps citizens' events unreadable in the store's files (a
# key kept beside the store protects only copies of the store without it) and halves the block
# being written (2 MB instead of 4), but the whole-platform soak showed no memory gained, and a
# lost key loses every stream: so it is the operator's choice (docs/operations.md).
NATS_STORE_CIPHER = "none"
NATS_STORE_KEY_FILE = "store.key"

_COLOURS = ("36", "32", "33", "35", "34", "31", "37")
_PR_SET_PDEATHSIG = 1


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


# Loaded in the parent: after fork, with other threads alive, the child may only call prctl.
_LIBC = _load_libc()


def _die_with_parent() -> None:
    """In the child, before exec: receive SIGTERM if the supervisor dies, so nothing is orphaned."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def answers_ok(port: int, target: str, *, host: str = "127.0.0.1") -> bool:
    """Whether ``GET target`` on ``host:port`` answers 200 within 2 s.

    On the event loop with h11 (the HTTP/1.1 state machine uvicorn and httpx use): no thread, no
    proxy from the environment, and neither urllib (3 MB resident) nor httpx (7 MB) in the
    long-lived supervisor (docs/operations.md, "Memory").
    """
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="GET", target=target, headers=[("Host", f"{host}:{port}"), ("Connection", "close")]
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(connection.send(request) + connection.send(h11.EndOfMessage()))
                await writer.drain()
                while True:
                    event = connection.next_event()
                    if event is h11.NEED_DATA:
                        connection.receive_data(await reader.read(65536))
                    elif isinstance(event, h11.Response):
                        return event.status_code == 200
                    else:
                        return False
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, h11.ProtocolError):
        return False


def _use_pidfd_child_watcher(loop: asyncio.AbstractEventLoop) -> None:
    """Python 3.11 waits for each asyncio child in a thread of its own (7 threads for the parts,
    each with its own malloc arena); a pidfd watcher waits on the event loop instead. From 3.12
    on asyncio chooses pidfds itself (and child watchers are deprecated)."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # a kernel before 5.3, or a sandbox refusing the call
        return
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)


@dataclass
class Child:
    """One supervised part process."""

    part: Part
    port: int
    colour: str
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 1.0
    pump: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Platform:
    """Everything `pingtai up` runs, and how to stop it."""

    var_dir: Path
    port_base: int
    nats_url: str | None
    nats_port: int = DEFAULT_NATS_PORT
    colour: bool = True
    out: Callable[[str], None] = print
    nats: NatsServer | None = None
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def env(self, part: Part | None = None) -> dict[str, str]:
        """The environment of a part's process (``part``), or of the migrations and the seed:
        shared settings and every part's port."""
        env = dict(os.environ)
        env["PINGTAI_VAR_DIR"] = str(self.var_dir)
        env.setdefault("PINGTAI_LOG_FORMAT", "console")
        env["PYTHONUNBUFFERED"] = "1"
        if self.nats_url:
            env["PINGTAI_NATS_URL"] = self.nats_url
        if self.nats is not None:
            # What the parts' streams are declared for (libs/common/events/streams.py).
            env["PINGTAI_NATS_STORE_CIPHER"] = self.nats.store_cipher or "none"
        env.pop(STORE_KEY_VARIABLE, None)  # the server's secret; no part needs it
        env.setdefault("PINGTAI_GATEWAY_URL", f"http://127.0.0.1:{self.port_base}")
        huge_pages = part is not None and part.huge_pages
        env.setdefault(
            "GLIBC_TUNABLES", HUGE_PAGES_GLIBC_TUNABLES if huge_pages else PART_GLIBC_TUNABLES
        )
        # No column positions in code objects (only tracebacks' ^^^ markers use them): 0.7 MB
        # less per part.
        env.setdefault("PYTHONNODEBUGRANGES", "1")
        for part in PARTS:
            env[f"{part.env_prefix}PORT"] = str(part.port(self.port_base))
        return env

    def say(self, message: str) -> None:
        self.out(f"pingtai    | {message}")

    # -- start -------------------------------------------------------------------------------

    def check_ports(self) -> None:
        """Refuse to start when a part's port is taken, naming it."""
        busy = [
            f"{p.name} ({p.port(self.port_base)})"
            for p in PARTS
            if not port_is_free(p.port(self.port_base))
        ]
        if busy:
            raise SystemExit(
                f"ports in use: {', '.join(busy)}. Is Pingtai already running "
                f"(`pingtai status`)? Choose other ports with --port-base."
            )

    async def start_nats(self) -> None:
        """Start the embedded NATS server unless PINGTAI_NATS_URL points at one."""
        if self.nats_url:
            self.say(f"using NATS at {self.nats_url}")
            return
        port = self.nats_port if port_is_free(self.nats_port) else free_port()
        store_dir = self.var_dir / "nats"
        cipher = os.environ.get("PINGTAI_NATS_STORE_CIPHER") or NATS_STORE_CIPHER
        if cipher not in (*STORE_CIPHERS, "none"):
            raise SystemExit(
                f"PINGTAI_NATS_STORE_CIPHER={cipher}: use one of {', '.join(STORE_CIPHERS)}, none"
            )
        key = None
        if cipher != "none":
            key = os.environ.get(STORE_KEY_VARIABLE) or store_key(store_dir / NATS_STORE_KEY_FILE)
        try:
            nats = NatsServer(
                store_dir=store_dir,
                port=port,
                store_cipher=None if cipher == "none" else cipher,
                store_key=key,
            )
            # Refused before the server starts when the store is encrypted with another key.
            nats.launch(env={"GOMEMLIMIT": NATS_GOMEMLIMIT, "GOGC": NATS_GOGC, **os.environ})
        except (ValueError, RuntimeError) as exc:
            raise SystemExit(f"NATS: {exc}") from exc
        self.nats = nats
        deadline = time.monotonic() + NATS_READY_TIMEOUT_S
        while not await answers_ok(nats.monitor_port, nats.health_path):
            if nats.process is not None and nats.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {nats.process.returncode}; see {nats.log_file}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server not ready after {NATS_READY_TIMEOUT_S:.0f}s")
            await asyncio.sleep(0.05)
        self.nats_url = nats.url
        self.say(f"NATS JetStream ready at {self.nats_url} (store {self.var_dir / 'nats'})")

    async def migrate_all(self) -> None:
        """Apply every part's migrations, in a child process (`pingtai migrate all`).

        The migrations import every part's models and Alembic; in a child they leave the
        long-lived supervisor as small as it started (docs/operations.md, "Memory").
        """
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pingtai",
            "migrate",
            "all",
            env=self.env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        assert process.stdout is not None
        output: list[str] = []
        while line := await process.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            output.append(text)
            if text.split(" ", 1)[0] in PART_NAMES:
                self.say("migrated " + " ".join(text.split()))
        if await process.wait() != 0:
            tail = "\n".join(output[-20:])
            raise RuntimeError(f"migrations failed (exit {process.returncode}):\n{tail}")

    async def seed_demo(self, gateway: str) -> None:
        """`pingtai seed --demo` in a child process, its lines shown as the supervisor's: the
        demo's modules and httpx (13 MB) never stay in the long-lived supervisor."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pingtai", "seed", "--demo", "--gateway", gateway,
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent,
        )  # fmt: skip
        assert process.stdout is not None
        while line := await process.stdout.readline():
            self.say(line.decode(errors="replace").rstrip())
        if await process.wait() != 0:
            self.say(f"the demo seed failed (exit {process.returncode}); see its lines above")

    async def spawn(self, child: Child) -> None:
        """Start (or restart) one part's process and stream its output with a prefix."""
        child.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            child.part.package,
            env=self.env(child.part),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops parts in order
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        child.pump = asyncio.create_task(self._pump(child, child.process))
        self.write_state()

    async def _pump(self, child: Child, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        name = child.part.name.ljust(10)
        prefix = f"\x1b[{child.colour}m{name}\x1b[0m | " if self.colour else f"{name} | "
        while line := await process.stdout.readline():
            self.out(prefix + line.decode(errors="replace").rstrip())

    async def wait_ready(self, child: Child, deadline: float) -> None:
        """Poll the part's /readyz until it answers 200."""
        while time.monotonic() < deadline:
            if child.process is not None and child.process.returncode is not None:
                raise RuntimeError(
                    f"{child.part.name} exited with {child.process.returncode} while starting"
                )
            if await answers_ok(child.port, "/readyz"):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{child.part.name} not ready after {READY_TIMEOUT_S:.0f}s")

    # -- run ---------------------------------------------------------------------------------

    async def supervise(self, child: Child) -> None:
        """Restart the part with backoff whenever it exits on its own."""
        while not self.stopping:
            assert child.process is not None
            code = await child.process.wait()
            if child.pump is not None:
                await child.pump
            if self.stopping:
                return
            uptime = time.monotonic() - child.started_at
            if uptime >= STABLE_AFTER_S:
                child.backoff_s = 1.0
            self.say(
                f"{child.part.name} exited with code {code} after {uptime:.1f}s; "
                f"restarting in {child.backoff_s:.0f}s"
            )
            await asyncio.sleep(child.backoff_s)
            if self.stopping:
                return
            child.backoff_s = min(child.backoff_s * 2, BACKOFF_MAX_S)
            child.restarts += 1
            await self.spawn(child)

    async def stop(self) -> None:
        """Stop every part (SIGTERM, then SIGKILL after a grace period), NATS last."""
        self.stopping = True
        running = [
            c for c in self.children if c.process is not None and c.process.returncode is None
        ]
        for child in running:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        for child in running:
            assert child.process is not None
            try:
                await asyncio.wait_for(child.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self.say(f"{child.part.name} did not stop in {STOP_TIMEOUT_S:.0f}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                await child.process.wait()
        for child in self.children:
            if child.pump is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(child.pump, 2.0)
        if self.nats is not None:
            await asyncio.to_thread(self.nats.stop)
            self.say("NATS stopped")
        with contextlib.suppress(FileNotFoundError):
            (self.var_dir / STATE_FILE).unlink()

    def write_state(self) -> None:
        """Record what runs where, for `pingtai status`."""
        state: dict[str, Any] = {
            "supervisor_pid": os.getpid(),
            "nats_url": self.nats_url,
            "nats_pid": self.nats.process.pid if self.nats and self.nats.process else None,
            "port_base": self.port_base,
            "parts": {
                c.part.name: {
                    "pid": c.process.pid if c.process else None,
                    "port": c.port,
                    "url": c.url,
                    "restarts": c.restarts,
                }
                for c in self.children
            },
        }
        path = self.var_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    def urls_table(self) -> str:
        """What a newcomer opens first."""
        gateway = f"http://127.0.0.1:{self.port_base}"
        rows = [
            ("Portal (门户)", f"{gateway}/"),
            ("Gateway", gateway),
            ("API docs", f"{gateway}/docs"),
            *((f"  {c.part.name}", f"{gateway}/api/{c.part.name}/docs") for c in self.children
              if c.part.name not in ("gateway", "portal")),
            ("NATS", self.nats_url or "-"),
            ("Data", str(self.var_dir)),
        ]  # fmt: skip
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows)


async def run_platform(platform: Platform, *, on_ready: Callable[[], None] | None = None) -> int:
    """Start everything, wait for readiness, supervise until SIGINT or SIGTERM, then stop."""
    started = time.monotonic()
    platform.var_dir.mkdir(parents=True, exist_ok=True)
    platform.check_ports()
    loop = asyncio.get_running_loop()
    _use_pidfd_child_watcher(loop)
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    supervisors: list[asyncio.Task[None]] = []
    try:
        await platform.start_nats()
        await platform.migrate_all()
        for index, part in enumerate(PARTS):
            child = Child(part, part.port(platform.port_base), _COLOURS[index % len(_COLOURS)])
            platform.children.append(child)
            await platform.spawn(child)
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting: asyncio.Future[Any] = asyncio.gather(
            *(platform.wait_ready(c, deadline) for c in platform.children)
        )
        stop_wait: asyncio.Future[Any] = asyncio.create_task(stop_requested.wait())
        done, _ = await asyncio.wait({waiting, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if stop_wait in done:
            waiting.cancel()
            platform.say("stopping before everything was ready")
            return 130
        stop_wait.cancel()
        waiting.result()
        took = time.monotonic() - started
        platform.say(f"ready in {took:.1f}s — every part answers /readyz\n{platform.urls_table()}")
        platform.say("Ctrl-C stops everything.")
        if on_ready is not None:
            on_ready()
        supervisors = [asyncio.create_task(platform.supervise(c)) for c in platform.children]
        await stop_requested.wait()
        platform.say("stopping ...")
        return 0
    except (RuntimeError, TimeoutError) as exc:
        platform.say(f"could not start: {exc}")
        return 1
    finally:
        # No restart may begin while the parts are being stopped.
        platform.stopping = True
        for task in supervisors:
            task.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)
        await platform.stop()
        platform.say("stopped; no part is left running")


def up(*, var_dir: Path, port_base: int, nats_port: int, offer_demo: bool) -> int:
    """Run the platform until Ctrl-C; with ``offer_demo``, load the demo on a first start."""
    first_start = not any(var_dir.glob("*.db"))
    gateway = f"http://127.0.0.1:{port_base}"
    ready_at: list[float] = []

    def on_ready() -> None:
        ready_at.append(time.monotonic())

    platform = Platform(
        var_dir=var_dir,
        port_base=port_base,
        nats_url=os.environ.get("PINGTAI_NATS_URL") or None,
        nats_port=nats_port,
        colour=sys.stdout.isatty(),
        out=lambda line: print(line, flush=True),
    )

    async def main() -> int:
        task = asyncio.create_task(run_platform(platform, on_ready=on_ready))
        if offer_demo and first_start:
            while not ready_at and not task.done():
                await asyncio.sleep(0.1)
            if ready_at:
                platform.say("first start: loading the demo province (pingtai seed --demo)")
                await platform.seed_demo(gateway)
        return await task

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    """What ``pingtai up`` becomes once its options are read (``python -m pingtai.supervise``)."""
    parser = argparse.ArgumentParser(prog="pingtai up", description=up.__doc__)
    parser.add_argument("--var-dir", type=Path, required=True)
    parser.add_argument("--port-base", type=int, required=True)
    parser.add_argument("--nats-port", type=int, default=DEFAULT_NATS_PORT)
    parser.add_argument("--offer-demo", action="store_true")
    args = parser.parse_args(argv)
    sys.exit(
        up(
            var_dir=args.var_dir.resolve(),
            port_base=args.port_base,
            nats_port=args.nats_port,
            offer_demo=args.offer_demo,
        )
    )

"""Benchmark: the peers our figures are compared with, measured here in the same run.

    .venv/bin/python bench/bench_peers.py [--duration 6] [--messages 20000]

What runs on this machine, one after another in the same minutes:

- **raw uvicorn**: a hello-world JSON answer from a bare ASGI callable and from a FastAPI route
  (one worker, uvloop, httptools, no access log) — the ceiling of any part's HTTP side;
- **nginx** in front of that uvicorn (``worker_processes 1``, upstream keepalive);
- **the gateway** (``python -m gateway``, one process) in front of the same uvicorn, anonymous,
  so the peer and our figure share the minute;
- **raw nats-py** against the venv's ``nats-server -js``: JetStream publishes one at a time,
  many in flight, and a durable pull consumer fetching and acknowledging, with events of the
  size our outbox sends (~390 bytes).

The load generator is ``wrk -t2 -c64`` when installed, else an aiohttp client in another
process (64 connections; it needs more CPU than wrk, so its rates are lower). Each HTTP row
prints requests/s, the median at one connection and the **server's CPU per request** (user +
system of its processes, from /proc): the figure the machine's other work disturbs least.
Keycloak cannot run here (no JVM); its published sizing is printed beside identity's figures.

wrk and nginx come from Debian (``wrk``, ``nginx-light``): when one is missing and ``apt-get`` is
usable (as root), the bench installs it first and says so (``--no-install``: never; the row or
the load generator then falls back as above).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import NGINX_CONF, UPSTREAM_APP, cpu_seconds, start_gateway, wait_http, wrk

from pingtai.natsserver import NatsServer, free_port

CONNECTIONS = 64
# Keycloak's published sizing (keycloak.org, "Concepts for sizing CPU and memory resources",
# high-availability guide, Keycloak 26): per vCPU, with TLS and its database; base memory of a
# pod with realm caches and 10,000 cached sessions 1,250 MB.
KEYCLOAK = (
    ("password logins (sign-ins)", 15, "most of it hashing the password"),
    ("client-credentials grants", 120, "a new TLS connection per grant in their test"),
    ("refresh-token grants", 120, ""),
)
KEYCLOAK_BASE_MEMORY_MB = 1250


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- tools from Debian ------------------------------------------------------------------------

DEBIAN_PACKAGES = {"wrk": "wrk", "nginx": "nginx-light"}


def find_tool(name: str) -> str | None:
    """The path of ``name`` on PATH or in /usr/sbin (nginx's place, not on every PATH)."""
    found = shutil.which(name)
    if found:
        return found
    sbin = Path("/usr/sbin") / name
    return str(sbin) if sbin.is_file() and os.access(sbin, os.X_OK) else None


def install_missing_tools(names: tuple[str, ...] = tuple(DEBIAN_PACKAGES)) -> None:
    """Install the Debian packages of the missing tools when apt-get is usable as root; else
    say how."""
    missing = [name for name in names if find_tool(name) is None]
    if not missing:
        return
    packages = [DEBIAN_PACKAGES[name] for name in missing]
    command = f"apt-get install -y {' '.join(packages)}"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"{', '.join(missing)} missing and apt-get not usable here: {command}", flush=True)
        return
    log = Path(tempfile.gettempdir()) / "bench-peers-apt.log"
    print(f"{', '.join(missing)} missing: {command} (log: {log}) ...", flush=True)
    # No question asked. The bench runs nginx itself, on a port of its own, whether or not the
    # package's scripts start a system nginx (a machine without an init system, or with a
    # policy-rc.d refusing, as in containers, starts none).
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log.open("w") as out:
        for step in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, env=env).returncode:
                print(f"  {' '.join(step)} failed; its log's end:", flush=True)
                print("\n".join(log.read_text().splitlines()[-15:]), flush=True)
                return
    for name in missing:
        print(f"  {name}: {find_tool(name) or 'still missing'}", flush=True)


# --- HTTP load -----------------------------------------------------------------------------


def _aiohttp_load(url: str, connections: int, seconds: float, out: Any) -> None:
    """Closed-loop GETs from ``connections`` clients for ``seconds`` (in its own process)."""
    import aiohttp

    async def run() -> tuple[int, int]:
        done = errors = 0
        deadline = time.monotonic() + seconds
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> None:
                nonlocal done, errors
                while time.monotonic() < deadline:
                    async with session.get(url) as response:
                        await response.read()
                        done += 1
                        errors += response.status != 200

            await asyncio.gather(*(one() for _ in range(connections)))
        return done, errors

    out.send(asyncio.run(run()))


def _latency_at_one(url: str, seconds: float) -> float:
    """The median of sequential GETs for ``seconds``, in ms (one keep-alive connection)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        connection.request("GET", parts.path)
        connection.getresponse().read()
        times.append((time.perf_counter() - started) * 1000)
    connection.close()
    return statistics.median(times)


def load(url: str, seconds: float) -> dict[str, float]:
    """Requests/s at ``CONNECTIONS`` connections and the median at one connection."""
    if find_tool("wrk"):
        many = wrk(url, connections=CONNECTIONS, duration=round(seconds), headers={})
        one = wrk(url, connections=1, duration=max(2, round(seconds / 2)), headers={})
        return {"rps": many["rps"], "requests": many["requests"], "p50_1c_ms": one["p50_ms"]}
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_aiohttp_load, args=(url, CONNECTIONS, seconds, send))
    started = time.perf_counter()
    process.start()
    done, errors = receive.recv()
    elapsed = time.perf_counter() - started
    process.join()
    if errors:
        raise RuntimeError(f"{url}: {errors} answers other than 200")
    return {
        "rps": done / elapsed,
        "requests": done,
        "p50_1c_ms": _latency_at_one(url, max(2.0, seconds / 2)),
    }


def measure(name: str, url: str, pid: int, seconds: float) -> dict[str, Any]:
    load(url, 2)  # warm up pools and caches
    cpu = cpu_seconds(pid)
    result: dict[str, Any] = {"what": name, **load(url, seconds)}
    result["cpu_us"] = (cpu_seconds(pid) - cpu) / result["requests"] * 1e6
    result["load"] = _loadavg()
    print(
        f"{name:<44}{result['rps']:>9,.0f} req/s  p50@1c {result['p50_1c_ms']:6.3f} ms  "
        f"server CPU {result['cpu_us']:6.0f} µs/req  load {result['load']}",
        flush=True,
    )
    return result


# --- raw nats-py ---------------------------------------------------------------------------


async def nats_raw(url: str, server_pid: int, count: int) -> list[dict[str, Any]]:
    """JetStream publishes one at a time and many in flight, then a pull consumer's fetch + ack."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    client = await nats.connect(url)
    js = client.jetstream()
    await js.add_stream(name="PEERS", subjects=["peers.>"], duplicate_window=120)
    body = b'{"specversion":"1.0","type":"bench.order.placed","data":{"n":0}}'.ljust(390, b" ")
    headers = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    results = []

    async def timed(name: str, n: int, run: Callable[[], Any]) -> None:
        cpu, own = cpu_seconds(server_pid), time.process_time()
        started = time.perf_counter()
        await run()
        elapsed = time.perf_counter() - started
        server_us = (cpu_seconds(server_pid) - cpu) / n * 1e6
        client_us = (time.process_time() - own) / n * 1e6
        results.append(
            {
                "what": name,
                "rate": n / elapsed,
                "server_us": server_us,
                "client_us": client_us,
                "load": _loadavg(),
            }
        )
        print(
            f"{name:<44}{n / elapsed:>9,.0f} msg/s  nats-server CPU {server_us:5.1f} µs/msg  "
            f"client CPU {client_us:5.1f} µs/msg  load {_loadavg()}",
            flush=True,
        )

    sync = max(1000, count // 5)

    async def one_at_a_time() -> None:
        for n in range(sync):
            await js.publish("peers.sync", body, headers={**headers, "Nats-Msg-Id": f"s{n}"})

    async def in_flight() -> None:
        futures = [
            await js.publish_async("peers.async", body, headers={**headers, "Nats-Msg-Id": f"a{n}"})
            for n in range(count)
        ]
        await asyncio.gather(*futures)

    async def consume() -> None:
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=10_000)
        subscription = await js.pull_subscribe("peers.async", durable="peers", config=config)
        received = 0
        while received < count:
            batch = await subscription.fetch(500, timeout=10)
            received += len(batch)
            for message in batch[:-1]:
                await message.ack()
            # The last acknowledgement is confirmed: the server has them all when the clock stops.
            await (batch[-1].ack_sync() if received >= count else batch[-1].ack())

    await timed("nats-py JetStream publish, one at a time", sync, one_at_a_time)
    await timed("nats-py JetStream publish, many in flight", count, in_flight)
    await timed("nats-py pull consumer, fetch 500 + ack", count, consume)
    await client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per HTTP run")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument(
        "--no-install", action="store_true", help="never install wrk or nginx with apt-get"
    )
    args = parser.parse_args()
    if not args.no_install:
        install_missing_tools()
    nginx = find_tool("nginx")
    print(
        f"load average before: {_loadavg()}; cores: {os.cpu_count()}; load generator: "
        f"{'wrk' if find_tool('wrk') else 'aiohttp (wrk not installed)'}; "
        f"nginx: {nginx or 'not installed (row left out)'}",
        flush=True,
    )
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as folder:
        work = Path(folder)
        nats = NatsServer(work / "nats")
        try:
            (work / "upstream_app.py").write_text(UPSTREAM_APP)
            servers = {}
            for kind in ("asgi", "api"):
                port = free_port()
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        f"upstream_app:{kind}",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--no-access-log",
                        "--loop",
                        "uvloop",
                        "--http",
                        "httptools",
                        "--log-level",
                        "warning",
                    ],
                    cwd=work,
                )
                processes.append(process)
                servers[kind] = (port, process.pid)
            upstream = servers["api"][0]
            path = "/api/catalog/v1/items"
            targets = {
                "raw uvicorn, bare ASGI hello world": (
                    f"http://127.0.0.1:{servers['asgi'][0]}/v1/items",
                    servers["asgi"][1],
                ),
                "raw uvicorn, FastAPI hello world": (
                    f"http://127.0.0.1:{upstream}/v1/items",
                    servers["api"][1],
                ),
            }
            if nginx:
                for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
                    (work / sub).mkdir()
                port = free_port()
                conf = work / "nginx.conf"
                conf.write_text(
                    NGINX_CONF.format(dir=work, upstream=upstream, port=port, workers=1)
                )
                process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)])
                processes.append(process)
                targets["nginx (1 worker) → FastAPI hello world"] = (
                    f"http://127.0.0.1:{port}{path}",
                    process.pid,
                )
            nats.start()
            database_url = f"sqlite+aiosqlite:///{work / 'gateway.db'}"
            from libs.common.migrations import migrate

            migrate("gateway", database_url)
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("PINGTAI_")},
                "PINGTAI_ENV": "development",
                "PINGTAI_NATS_URL": nats.url,
                "PINGTAI_GATEWAY_DATABASE_URL": database_url,
                "PINGTAI_GATEWAY_CATALOG_URL": f"http://127.0.0.1:{upstream}",
                "PINGTAI_GATEWAY_ANONYMOUS_PER_MINUTE": "0",
                "PINGTAI_GATEWAY_PORT": str(port),
            }
            root = Path(__file__).resolve().parents[1]
            gateway = start_gateway(env, workers=1, root=root, log=work / "gateway.log")
            processes.append(gateway)
            targets["pingtai gateway (1 process) → FastAPI hello world"] = (
                f"http://127.0.0.1:{port}{path}",
                gateway.pid,
            )
            for url, _ in targets.values():
                wait_http(url, timeout=60)
            for name, (url, pid) in targets.items():
                measure(name, url, pid, args.duration)
            assert nats.process is not None
            asyncio.run(nats_raw(nats.url, nats.process.pid, args.messages))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
            nats.stop()
    print("\nKeycloak's published sizing (not run here: no JVM on this machine), per vCPU:")
    for what, per_cpu, note in KEYCLOAK:
        print(
            f"  {what:<30}{per_cpu:>5}/s  = {1000 / per_cpu:5.1f} ms of CPU each"
            + (f"  ({note})" if note else "")
        )
    print(f"  base memory of a pod                {KEYCLOAK_BASE_MEMORY_MB} MB")
    print(f"load average after: {_loadavg()}")


if __name__ == "__main__":
    main()

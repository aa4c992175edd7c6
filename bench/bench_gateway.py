"""Benchmark: the gateway's overhead against talking to a part directly and through nginx.

One uvicorn process (uvloop, httptools, no access log) serves a trivial JSON endpoint. wrk
measures it several ways, in alternating rounds so that other load on the shared machine falls on
every row alike:

- direct: wrk -> uvicorn;
- nginx, 1 worker: wrk -> nginx (``worker_processes 1``, upstream keep-alive) -> uvicorn, the
  reference proxy, compared with
- gateway, 1 process: wrk -> ``python -m gateway`` (as ``pingtai serve gateway``, INFO access log
  to a file) -> uvicorn, anonymous calls with no rate limit; and
- gateway + key + limits, 1 process: the same, each request carrying an X-API-Key on a plan whose
  per-minute and daily limits are counted in NATS JetStream (leases);
- nginx, 2 workers (``worker_processes auto`` on this 2-core machine), compared with
- gateway, 2 workers (``PINGTAI_GATEWAY_WORKERS=2``) and the same + key + limits;
- with ``--before DIR``: also a 1-process gateway run from another checkout (the code before a
  change), in the same rounds.

Throughput at 64 connections (``wrk -t2 -c64``), median latency at one connection
(``wrk -t1 -c1 --latency``), and the CPU time each proxy's processes spent per request (from
/proc: user + system, all its processes), which the machine's other load disturbs far less than
the rates (and counts the gateway's Tokio thread, pyreqwest's, with the rest). Then the
service-to-service client question: httpx (tuned), aiohttp's client and pyreqwest (the gateway's
upstream client), each in one process, 64 requests in flight and one at a time, against the
same uvicorn. Setup: ``apt-get install -y wrk nginx-light`` (or nginx). Run:

    .venv/bin/python bench/bench_gateway.py            # --duration 8 --repeat 3 [--before DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pingtai.natsserver import NatsServer, free_port  # noqa: E402

# A trivial JSON endpoint on FastAPI, as every part is built (the figures the issue plans with);
# --upstream asgi serves the same body from a bare ASGI callable (a much faster upstream).
UPSTREAM_APP = """
from fastapi import FastAPI

api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@api.get("/v1/items")
async def items() -> dict:
    return {"ok": True, "items": [1, 2, 3]}


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b'{"ok":true,"items":[1,2,3]}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""

NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {dir}/nginx-{port}.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream part {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location /api/catalog/ {{
      proxy_pass http://part/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
"""


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process ``root`` and all its descendants (so far alive)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


def wrk(url: str, *, connections: int, duration: int, headers: dict[str, str]) -> dict[str, float]:
    """Requests/s and the median latency (ms) wrk reports."""
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for field, text in headers.items():
        command += ["-H", f"{field}: {text}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    match = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert match is not None, out
    value, unit = float(match.group(1)), match.group(2)
    p50 = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} non-2xx answers\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50_ms": p50, "requests": requests}


async def seed_key(database_url: str, secret_key: str) -> str:
    """A plan with limits far above the run, an application and a key, written directly."""
    from gateway.applications import service as applications_service
    from gateway.applications.keys import KeyHasher
    from gateway.applications.schemas import ApiKeyCreate, ApplicationCreate
    from gateway.plans import service as plans_service
    from gateway.plans.schemas import PlanCreate
    from libs.common.auth import Principal, Role
    from libs.common.database import Database

    admin = Principal(
        sub="bench", client_id="bench", org="bench-org", roles=frozenset({Role.PLATFORM_ADMIN}),
        acr=0, scopes=frozenset(), jti="bench", expires_at=datetime.now(UTC),
    )  # fmt: skip
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session, session.begin():
            plan = await plans_service.create(
                session=session,
                principal=admin,
                draft=PlanCreate(
                    code="bench",
                    name="bench",
                    requests_per_minute=1_000_000,
                    requests_per_day=1_000_000_000,
                ),  # fmt: skip
            )
            application = await applications_service.create(
                session=session, principal=admin, draft=ApplicationCreate(name="bench")
            )
            _, key = await applications_service.issue_key(
                session=session,
                principal=admin,
                application_id=application.id,
                draft=ApiKeyCreate(plan_id=plan.id),
                hasher=KeyHasher(secret_key),
                env="development",
            )
    finally:
        await database.dispose()
    return key


async def client_bench(url: str, duration: float) -> dict[str, dict[str, float]]:
    """httpx (tuned) and aiohttp as a part's outgoing client: 64 in flight, then 1."""
    import aiohttp
    import httpx

    async def run(get: Any, in_flight: int) -> tuple[float, float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await get()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return len(latencies) / (time.perf_counter() - started), statistics.median(latencies)

    results: dict[str, dict[str, float]] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=4)
    async with httpx.AsyncClient(limits=limits, timeout=10, http2=False, trust_env=False) as hx:

        async def hx_get() -> None:
            response = await hx.get(url)
            response.read()

        rps, _ = await run(hx_get, 64)
        _, p50 = await run(hx_get, 1)
        results["httpx (tuned)"] = {"rps": rps, "p50_ms": p50 * 1000}
    connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=4)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:

        async def aio_get() -> None:
            async with session.get(url) as response:
                await response.read()

        rps, _ = await run(aio_get, 64)
        _, p50 = await run(aio_get, 1)
        results["aiohttp"] = {"rps": rps, "p50_ms": p50 * 1000}
    from pyreqwest.client import ClientBuilder  # Rust reqwest/hyper: the gateway's upstream client

    async with ClientBuilder().http1_only().max_connections(64).build() as rq:

        async def rq_get() -> None:
            async with rq.get(url).build_streamed() as response:
                await response.bytes()

        rps, _ = await run(rq_get, 64)
        _, p50 = await run(rq_get, 1)
        results["pyreqwest"] = {"rps": rps, "p50_ms": p50 * 1000}
    return results


def start_gateway(
    env: dict[str, str], *, workers: int, root: Path, log: Path
) -> subprocess.Popen[bytes]:
    """``python -m gateway`` from checkout ``root`` with ``workers`` processes."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env={**env, "PINGTAI_GATEWAY_WORKERS": str(workers), "PYTHONPATH": str(root)},
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds")
    parser.add_argument(
        "--upstream", choices=["api", "asgi"], default="api", help="FastAPI or bare ASGI part"
    )
    parser.add_argument(
        "--before", type=Path, help="another checkout whose 1-process gateway joins the rounds"
    )
    parser.add_argument("--skip-clients", action="store_true", help="no client comparison")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is missing: apt-get install -y wrk nginx-light")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    python = sys.executable
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        work = Path(tmp)
        print(f"loadavg before: {loadavg()}  cores: {os.cpu_count()}  upstream: {args.upstream}")
        try:
            (work / "upstream_app.py").write_text(UPSTREAM_APP)
            upstream = free_port()
            processes.append(subprocess.Popen(
                [python, "-m", "uvicorn", f"upstream_app:{args.upstream}", "--host", "127.0.0.1",
                 "--port", str(upstream), "--no-access-log", "--loop", "uvloop",
                 "--http", "httptools", "--log-level", "warning"],
                cwd=work,
            ))  # fmt: skip
            for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
                (work / sub).mkdir()
            nginx_ports: dict[str, int] = {}
            pids: dict[str, int] = {}
            for nginx_workers in ("1", "auto"):
                port = nginx_ports[nginx_workers] = free_port()
                conf = work / f"nginx-{nginx_workers}.conf"
                conf.write_text(NGINX_CONF.format(
                    dir=work, upstream=upstream, port=port, workers=nginx_workers
                ))  # fmt: skip
                process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)])
                processes.append(process)
                pids[f"nginx:{nginx_workers}"] = process.pid
            nats = NatsServer(work / "nats")
            nats.start()
            database_url = f"sqlite+aiosqlite:///{work / 'gateway.db'}"
            from libs.common.migrations import migrate

            migrate("gateway", database_url)
            secret = "bench-secret-0123456789abcdef0123456789"
            key = asyncio.run(seed_key(database_url, secret))
            base_env = {
                **os.environ,
                "PINGTAI_ENV": "development",
                "PINGTAI_SECRET_KEY": secret,
                "PINGTAI_NATS_URL": nats.url,
                "PINGTAI_GATEWAY_DATABASE_URL": database_url,
                "PINGTAI_GATEWAY_CATALOG_URL": f"http://127.0.0.1:{upstream}",
                "PINGTAI_GATEWAY_ANONYMOUS_PER_MINUTE": "0",
            }
            gateways = {"gateway:1": (1, ROOT), "gateway:2": (2, ROOT)}
            if args.before:
                gateways["before:1"] = (1, args.before.resolve())
            gateway_ports: dict[str, int] = {}
            for name, (workers, root) in gateways.items():
                port = gateway_ports[name] = free_port()
                env = {**base_env, "PINGTAI_GATEWAY_PORT": str(port)}
                log = work / f"{name.replace(':', '-')}.log"
                process = start_gateway(env, workers=workers, root=root, log=log)
                processes.append(process)
                pids[name] = process.pid
            direct = f"http://127.0.0.1:{upstream}/v1/items"
            path = "/api/catalog/v1/items"
            keyed = {"X-API-Key": key}
            targets: dict[str, tuple[str, dict[str, str], int | None]] = {
                "direct": (direct, {}, None),
                "nginx, 1 worker": (f"http://127.0.0.1:{nginx_ports['1']}{path}", {},
                                    pids["nginx:1"]),
                "gateway, 1 process": (f"http://127.0.0.1:{gateway_ports['gateway:1']}{path}",
                                       {}, pids["gateway:1"]),
                "gateway + key, 1 process": (
                    f"http://127.0.0.1:{gateway_ports['gateway:1']}{path}", keyed,
                    pids["gateway:1"]),
                "nginx, 2 workers": (f"http://127.0.0.1:{nginx_ports['auto']}{path}", {},
                                     pids["nginx:auto"]),
                "gateway, 2 workers": (f"http://127.0.0.1:{gateway_ports['gateway:2']}{path}",
                                       {}, pids["gateway:2"]),
                "gateway + key, 2 workers": (
                    f"http://127.0.0.1:{gateway_ports['gateway:2']}{path}", keyed,
                    pids["gateway:2"]),
            }  # fmt: skip
            if args.before:
                targets["before: gateway, 1 process"] = (
                    f"http://127.0.0.1:{gateway_ports['before:1']}{path}",
                    {},
                    pids["before:1"],
                )
            wait_http(direct)
            for name, port in gateway_ports.items():
                try:
                    wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
                except TimeoutError:
                    log_tail = (work / f"{name.replace(':', '-')}.log").read_text()[-3000:]
                    raise TimeoutError(f"{name} did not start:\n{log_tail}") from None
            for url, headers, _ in targets.values():  # warm up pools, caches and leases
                wrk(url, connections=64, duration=2, headers=headers)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            latency: dict[str, list[float]] = {name: [] for name in targets}
            for round_ in range(args.repeat):
                for name, (url, headers, pid) in targets.items():
                    cpu = cpu_seconds(pid) if pid else 0.0
                    result = wrk(url, connections=64, duration=args.duration, headers=headers)
                    if pid:
                        result["cpu_us"] = (cpu_seconds(pid) - cpu) / result["requests"] * 1e6
                    result["load1"] = float(Path("/proc/loadavg").read_text().split()[0])
                    runs[name].append(result)
                    single = wrk(url, connections=1, duration=max(3, args.duration // 2),
                                 headers=headers)  # fmt: skip
                    latency[name].append(single["p50_ms"])
                    cpu_text = f"cpu {result['cpu_us']:5.0f} us/req  " if pid else " " * 20
                    print(f"round {round_ + 1} {name:28s} {result['rps']:8.0f} req/s  "
                          f"{cpu_text}p50@1c {single['p50_ms']:.3f} ms  "
                          f"loadavg {loadavg()}", flush=True)  # fmt: skip
            summary: dict[str, dict[str, Any]] = {
                name: {
                    "rps": statistics.median(r["rps"] for r in runs[name]),
                    "rps_runs": [round(r["rps"]) for r in runs[name]],
                    "cpu_us": statistics.median(r.get("cpu_us", 0.0) for r in runs[name]),
                    "load1": [r["load1"] for r in runs[name]],
                    "p50_1c_ms": statistics.median(latency[name]),
                }
                for name in targets
            }
            print()
            print(f"{'':30s}{'req/s (median)':>15s}  {'runs':>22s}  {'cpu us/req':>10s}  "
                  f"{'p50 @1 conn':>12s}  load1 per run")  # fmt: skip
            for name, row in summary.items():
                runs_text = str(row["rps_runs"])
                print(f"{name:30s}{row['rps']:15.0f}  {runs_text:>22s}  {row['cpu_us']:10.0f}  "
                      f"{row['p50_1c_ms']:9.3f} ms  {row['load1']}")  # fmt: skip
            d = summary["direct"]

            def ratio(a: str, b: str) -> str:
                return f"{summary[a]['rps'] / summary[b]['rps']:.0%}"

            print()
            print(
                "gateway / nginx throughput, 1 process each:  "
                f"{ratio('gateway, 1 process', 'nginx, 1 worker')}  (target >= 60 %)"
            )
            print("gateway / nginx throughput, 2 workers each:  "
                  f"{ratio('gateway, 2 workers', 'nginx, 2 workers')}")  # fmt: skip
            added = summary["gateway, 1 process"]["p50_1c_ms"] - d["p50_1c_ms"]
            print(f"gateway added median at 1 conn:    {added:.3f} ms  (target <= 0.5 ms)")
            nginx_added = summary["nginx, 1 worker"]["p50_1c_ms"] - d["p50_1c_ms"]
            print(f"nginx added median at 1 conn:      {nginx_added:.3f} ms")
            print("with key + limits / gateway:       "
                  f"{ratio('gateway + key, 1 process', 'gateway, 1 process')} (1 process), "
                  f"{ratio('gateway + key, 2 workers', 'gateway, 2 workers')} (2 workers)  "
                  "(target >= 90 %)")  # fmt: skip
            clients: dict[str, dict[str, float]] = {}  # filled unless --skip-clients
            if not args.skip_clients:
                print()
                print("service-to-service client, one process, against the same uvicorn:")
                clients = asyncio.run(client_bench(direct, float(max(3, args.duration // 2))))
                for name, row in clients.items():
                    print(f"  {name:14s} {row['rps']:8.0f} req/s (64 in flight)  "
                          f"p50 {row['p50_ms']:.3f} ms (1 in flight)")  # fmt: skip
            print(f"loadavg after: {loadavg()}")
            print(json.dumps({"summary": summary, "clients": clients}))
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
            if "nats" in locals():
                nats.kill()


if __name__ == "__main__":
    main()

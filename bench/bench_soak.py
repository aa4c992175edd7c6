"""Benchmark: load and soak — the whole "apply once" flow through the gateway for minutes.

    .venv/bin/python bench/bench_soak.py [--duration 600] [--rate 1.0] [--warmup 60]
                                         [--max-in-flight 16] [--report-every 30]

Starts ``pingtai up`` on free ports in a temporary folder (every part a process, the embedded
NATS, SQLite files), loads ``pingtai seed --demo`` and then, for ``--duration`` seconds, starts
flows at a fixed ``--rate`` (flows per second, open loop; at most ``--max-in-flight`` at once).
Each flow is the core flow of docs/architecture.md, every request through the gateway:

1. the applicant (沈洁, agent of 杭州云栖科技有限公司) signs in: authorization code with PKCE
   through identity's form, as the portal does (``sign-in``);
2. searches the catalogue for the "open a business" bundle and reads it (``search``, ``read
   bundle``);
3. submits one application with the bundle's merged form (``submit``: four departments'
   branches, the materials the government holds fetched from exchange under the application as
   legal basis) and uploads what is asked (``upload``); when exchange did not answer in time,
   workflow accepts the submission with its materials ``pending_fetch`` and fetches them in the
   background: the flow reads the application until it moves on (``fetch wait``, not an error);
4. each department's officers — market, police, tax, human resources, at once — find the task
   in their inbox, claim it and decide: accept, then approve (``inbox``, ``claim``, ``decide``);
5. the applicant reads the result (``read result``: completed, four result documents), reviews
   the service (``review``; evaluation learns the completion from workflow's events, so a 409
   "not finished" is retried — the wait is reported as ``review wait``, not as an error) and reads
   who used their data (``who used my data``: exchange's ledger shows workflow's reads).

Any other answer than the expected one is an error (target: 0). Printed: flows and requests per
second, p50/p95/p99/max per step, errors, every part's server CPU per flow (from
``/proc/<pid>/stat``, the figure a loaded machine disturbs least), and every process's resident
memory (``VmRSS`` from ``/proc/<pid>/status``, summed over the part's process tree): right after
the seed, after the warm-up (the start of the measured window) and at the end, with the lowest
and highest of the samples taken every ``--report-every`` seconds over the window (memory that
swings, like nats-server's block being written, is told from memory that only grows), and
beside them the growth of the peak: the highest sample of the window's second half over the
first half's (a sawtooth's start and end fall anywhere in it; its peaks grow only if it does).
Targets (issue 12): memory growth over the window (start to end) <= 10 % per part, the whole
platform <= 800 MB.

Progress is printed every ``--report-every`` seconds. The gateway allows 600 anonymous requests a
minute per address and a flow makes about five (sign-in, search): keep ``--rate`` <= 1.5 from one
address. Officers sign in once and again every 200 s (tokens live 300 s).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_memory import Sample, sample, seed_demo
from bench_memory import loadavg as _loadavg
from bench_memory import mb as _mb
from bench_memory import memory_line as _memory_line
from loadgen import settle_heap

from pingtai.demo.identity import ORGANISATIONS, PEOPLE, DemoPerson
from pingtai.demo.workflow import PDF, _org_ids, _value, sign_in
from pingtai.seed import ADMIN_CLIENT_ID, DEV_ADMIN_CLIENT_SECRET, admin_token

BUNDLE = "zj-bundle-open-business"
SEARCH = "开办企业"
APPLICANT = 31  # 沈洁, agent of 杭州云栖科技有限公司
ENTERPRISE = "yunqi"
# Each department: the officer who accepts and the one who approves (a department admin).
DEPARTMENTS = {"market": (11, 12), "police": (13, 14), "tax": (17, 17), "hrss": (15, 15)}
OFFICER_TOKEN_AGE_S = 200.0  # identity's access tokens live 300 s
REVIEW_WAIT_S = 60.0
FETCH_WAIT_S = 120.0
DRAIN_S = 300.0  # how long the flows in flight at the end may take to finish
RATINGS = {"overall": 5, "speed": 5, "attitude": 5, "clarity": 4, "convenience": 5}
MEMORY_TARGET_MB = 800.0
GROWTH_TARGET = 0.10
# An access-log line of a 5xx answer, or a traceback, in any part's output.
SERVER_ERROR = re.compile(r"status=5\d\d|Traceback \(most recent call last\)")
_FIELD = re.compile(r"\b(part|status|route)=(\S+)")
STEPS = (
    "sign-in",
    "search",
    "read bundle",
    "submit",
    "fetch wait",
    "read application",
    "upload",
    "inbox",
    "claim",
    "decide",
    "read result",
    "review",
    "review wait",
    "who used my data",
    "whole flow",
)


def _person(suffix: int) -> DemoPerson:
    return next(p for p in PEOPLE if p.phone.endswith(f"{suffix:04d}"))


# --- the flow ---------------------------------------------------------------------------------


class FlowError(Exception):
    """An answer the flow did not expect: counted as an error, the flow stops."""


@dataclass
class Results:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    flows_started: int = 0
    flows_done: int = 0
    requests: int = 0
    review_retries: int = 0
    fetch_waits: int = 0  # reads of an application whose materials workflow was still fetching
    late_starts: int = 0  # flows started after their due time because --max-in-flight was full
    measuring: bool = False  # only the measured window's figures count

    def record(self, step: str, ms: float) -> None:
        if self.measuring:
            self.times[step].append(ms)


class Flow:
    """What every flow shares: the gateway client, the bundle's id and the officers' tokens."""

    def __init__(self, http: httpx.AsyncClient, gateway: str, orgs: dict[str, str]) -> None:
        self.http = http
        self.gateway = gateway
        self.orgs = orgs
        self.results = Results()
        self.officers: dict[int, tuple[str, float]] = {}
        self._signing: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def _call(
        self, step: str, method: str, path: str, *ok: int, **kwargs: Any
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise FlowError(f"{step}: {method} {path}: {exc!r}") from exc
        self.results.requests += 1
        if response.status_code not in ok:
            raise FlowError(
                f"{step}: {method} {path} answered {response.status_code}: {response.text[:300]}"
            )
        self.results.record(step, (time.perf_counter() - started) * 1000)
        return response

    async def officer(self, suffix: int, department: str) -> dict[str, str]:
        """An officer's Authorization header; signs in again before the token runs out."""
        async with self._signing[suffix]:
            token, at = self.officers.get(suffix, ("", 0.0))
            if time.monotonic() - at > OFFICER_TOKEN_AGE_S:
                token = await sign_in(self.gateway, _person(suffix), self.orgs[department])
                self.officers[suffix] = (token, time.monotonic())
        return {"Authorization": f"Bearer {token}"}

    async def run(self, due: float) -> None:
        """One whole flow; the time of ``whole flow`` counts from when it was due."""
        started = time.perf_counter()
        try:
            token = await sign_in(self.gateway, _person(APPLICANT), self.orgs[ENTERPRISE])
        except Exception as exc:  # sign_in raises RuntimeError/KeyError on a wrong answer
            raise FlowError(f"sign-in: {exc!r}") from exc
        self.results.requests += 4
        self.results.record("sign-in", (time.perf_counter() - started) * 1000)
        applicant = {"Authorization": f"Bearer {token}"}

        found = await self._call(
            "search", "GET", "/api/catalog/v1/bundles", 200, params={"q": SEARCH}
        )
        ids = [b["id"] for b in found.json()["items"] if b["code"] == BUNDLE]
        if not ids:
            raise FlowError(f"search: {BUNDLE} not found by {SEARCH!r}")
        bundle = (
            await self._call("read bundle", "GET", f"/api/catalog/v1/bundles/{ids[0]}", 200)
        ).json()

        form = _form(bundle["merged_form"])
        submitted = await self._call(
            "submit",
            "POST",
            "/api/workflow/v1/applications",
            201,
            json={"bundle_id": bundle["id"], "form": form},
            headers={**applicant, "Idempotency-Key": uuid.uuid4().hex},
        )
        application = submitted.json()
        path = f"/api/workflow/v1/applications/{application['id']}"
        application = await self._fetched(application, path, applicant)
        for material in application["materials"]:
            if material["state"] == "requested":
                await self._call(
                    "upload",
                    "POST",
                    f"{path}/materials/{material['key']}",
                    200,
                    content=PDF,
                    params={"filename": f"{material['key']}.pdf"},
                    headers={**applicant, "Content-Type": "application/pdf"},
                )

        await asyncio.gather(
            *(
                self._department(application["id"], key, clerk, approver)
                for key, (clerk, approver) in DEPARTMENTS.items()
            )
        )

        result = (await self._call("read result", "GET", path, 200, headers=applicant)).json()
        if result["status"] != "completed" or len(result["result"]["documents"]) != len(
            DEPARTMENTS
        ):
            raise FlowError(f"read result: {result['status']}, {result.get('result')}")
        await self._review(application["id"], applicant)
        used = (
            await self._call(
                "who used my data", "GET", "/api/exchange/v1/me/accesses", 200, headers=applicant
            )
        ).json()["items"]
        if not any(u["basis_ref"] == application["id"] for u in used):
            raise FlowError("who used my data: no read under this application")
        self.results.record("whole flow", (time.perf_counter() - due) * 1000)

    async def _fetched(
        self, application: dict[str, Any], path: str, applicant: dict[str, str]
    ) -> dict[str, Any]:
        """The application once workflow has its materials: when exchange did not answer in
        time, the submission is accepted with materials ``pending_fetch`` and workflow fetches
        them in the background (reported as ``fetch wait``, not as an error)."""
        first = time.perf_counter()
        deadline = time.monotonic() + FETCH_WAIT_S
        attempt = 0
        while application["status"] == "submitted" and time.monotonic() < deadline:
            self.results.fetch_waits += 1
            await asyncio.sleep(min(0.25 * (attempt := attempt + 1), 2.0))
            answer = await self._call("read application", "GET", path, 200, headers=applicant)
            application = answer.json()
        if application["status"] == "submitted":
            raise FlowError(f"fetch wait: materials still pending after {FETCH_WAIT_S:.0f} s")
        if attempt:
            self.results.record("fetch wait", (time.perf_counter() - first) * 1000)
        return application

    async def _department(self, application_id: str, key: str, clerk: int, approver: int) -> None:
        for who, decision in ((clerk, "accept"), (approver, "approve")):
            headers = await self.officer(who, key)
            inbox = await self._call(
                "inbox",
                "GET",
                "/api/workflow/v1/tasks",
                200,
                params={"application_id": application_id},
                headers=headers,
            )
            tasks = [t for t in inbox.json()["items"] if decision in t["decisions"]]
            if len(tasks) != 1:
                raise FlowError(f"inbox: {len(tasks)} tasks to {decision} in {key}")
            task = f"/api/workflow/v1/tasks/{tasks[0]['id']}"
            await self._call("claim", "POST", f"{task}/claim", 200, headers=headers)
            await self._call(
                "decide",
                "POST",
                f"{task}/actions",
                200,
                headers=headers,
                json={"decision": decision, "comment": "同意"},
            )

    async def _review(self, application_id: str, applicant: dict[str, str]) -> None:
        """Review once evaluation has learnt the completion from workflow's events."""
        first = time.perf_counter()
        deadline = time.monotonic() + REVIEW_WAIT_S
        attempt = 0
        while True:
            started = time.perf_counter()
            answer = await self.http.post(
                "/api/evaluation/v1/reviews",
                json={"application_id": application_id, **RATINGS, "comment": "一次办成"},
                headers={**applicant, "Idempotency-Key": f"soak-{application_id}"},
            )
            self.results.requests += 1
            finishing = answer.status_code == 404 or (
                answer.status_code == 409 and "not-finished" in answer.text
            )
            if not finishing or time.monotonic() > deadline:
                break
            self.results.review_retries += 1
            await asyncio.sleep(min(0.25 * (attempt := attempt + 1), 2.0))
        if answer.status_code != 201:
            raise FlowError(f"review: answered {answer.status_code}: {answer.text[:300]}")
        self.results.record("review", (time.perf_counter() - started) * 1000)
        self.results.record("review wait", (time.perf_counter() - first) * 1000)


def _form(schema: dict[str, Any]) -> dict[str, Any]:
    """The merged form, filled as 沈洁 of 杭州云栖科技有限公司 would."""
    credit = next(o.credit_code for o in ORGANISATIONS if o.key == ENTERPRISE)
    person = _person(APPLICANT)
    return {n: _value(n, s, person, credit) for n, s in schema.get("properties", {}).items()}


# --- the run ----------------------------------------------------------------------------------


def _server_errors(lines: list[str]) -> dict[tuple[str, str, str], int]:
    """5xx answers and tracebacks in the platform's output, by part, status and route."""
    found: dict[tuple[str, str, str], int] = defaultdict(int)
    for line in lines:
        if not SERVER_ERROR.search(line):
            continue
        fields = dict(_FIELD.findall(line))
        status, route = fields.get("status", "traceback"), fields.get("route", "")
        if status == "502" and "records:batch" in line:
            # By design: the demo's population register is federated to a bureau with no system
            # connected, so exchange answers workflow's batch query 502 (federation-not-
            # configured) and workflow asks the applicant for that material instead.
            continue
        found[(line.split("|", 1)[0].strip(), status, route)] += 1
    return found


async def soak(gateway: str, var_dir: Path, args: argparse.Namespace, log: list[str]) -> int:
    """Run the flows; print the report; 0 if every target held."""
    # Idle connections are dropped before uvicorn's keep-alive timeout (5 s) closes them: a
    # request sent on a connection the server is closing fails with a ReadError (the race every
    # HTTP/1.1 client has; httpx's default expiry is the same 5 s).
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=gateway, timeout=60.0, limits=limits) as http:
        http.headers["Authorization"] = "Bearer " + await admin_token(
            http, client_id=ADMIN_CLIENT_ID, client_secret=DEV_ADMIN_CLIENT_SECRET
        )
        orgs = await _org_ids(http)
        del http.headers["Authorization"]
        flow = Flow(http, gateway, orgs)
        results = flow.results
        seeded = sample(var_dir)
        log_from = len(log)  # the seed's own retries (503 while a read copy catches up) are past
        print(f"after the seed: {_memory_line(seeded)}; load average {_loadavg()}", flush=True)

        in_flight = asyncio.Semaphore(args.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()

        async def one(due: float) -> None:
            try:
                await flow.run(due)
                results.flows_done += 1
            except Exception as exc:  # every failure counts; FlowError names its step
                text = str(exc) if isinstance(exc, FlowError) else f"{type(exc).__name__}: {exc!r}"
                results.errors.append(text)
                print(f"  ERROR {text}", flush=True)
            finally:
                in_flight.release()

        t0 = time.perf_counter()
        end = t0 + args.warmup + args.duration
        window_start: Sample | None = None
        window_samples: list[Sample] = []  # every --report-every over the window, and its ends
        flows_at_window = requests_at_window = 0
        next_report = t0 + args.report_every
        number = 0
        while True:
            due = t0 + number / args.rate
            now = time.perf_counter()
            if due >= end or now >= end:  # a saturated platform starts fewer flows, not later
                break
            if window_start is None and now >= t0 + args.warmup:
                settle_heap()  # bench/loadgen.py: the client's own collections out of the window
                await asyncio.sleep(0)
                window_start = sample(var_dir)
                window_samples.append(window_start)
                flows_at_window, requests_at_window = results.flows_done, results.requests
                results.measuring = True
                print(
                    f"warm-up done ({results.flows_done} flows); measuring "
                    f"{args.duration:.0f} s; {_memory_line(window_start)}",
                    flush=True,
                )
            if now >= next_report:
                s = sample(var_dir)
                if window_start is not None:
                    window_samples.append(s)
                print(
                    f"[{now - t0:6.0f} s] flows {results.flows_done} done, "
                    f"{len(tasks)} in flight, errors {len(results.errors)}, "
                    f"{_memory_line(s)}, load {_loadavg()}\n         RSS MB: "
                    + " ".join(f"{n} {_mb(kb):.1f}" for n, kb in s.rss_kb.items()),
                    flush=True,
                )
                next_report += args.report_every
            if due > now:
                await asyncio.sleep(min(due - now, max(0.0, next_report - now)))
                continue
            if in_flight.locked():
                results.late_starts += 1
            await in_flight.acquire()
            results.flows_started += 1
            task = asyncio.create_task(one(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            number += 1
        if tasks:
            await asyncio.wait(tasks, timeout=DRAIN_S)
        finished = sample(var_dir)
        window_samples.append(finished)
        elapsed = time.perf_counter() - t0 - args.warmup
        unfinished = len(tasks)  # cancelled when the loop closes: neither done nor errors

    assert window_start is not None
    flows = results.flows_done - flows_at_window
    requests = results.requests - requests_at_window
    print(
        f"\n== soak: {elapsed:.0f} s measured (until the last flow ended) after "
        f"{args.warmup:.0f} s of warm-up, flows started at {args.rate}/s, "
        f"at most {args.max_in_flight} in flight"
    )
    print(
        f"flows completed {flows} ({flows / elapsed:.2f}/s), requests {requests} "
        f"({requests / elapsed:.1f}/s) through the gateway; late starts {results.late_starts}; "
        f"review retries {results.review_retries}; fetch waits {results.fetch_waits}; "
        f"load average at the end {_loadavg()}"
    )
    print(
        f"errors {len(results.errors)} (target 0); flows still running {DRAIN_S:.0f} s after "
        f"the last start: {unfinished} (stopped, counted neither way)"
    )
    for error in results.errors[:10]:
        print(f"  {error}")
    print(f"\n{'step':<18}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for step in STEPS:
        values = sorted(results.times.get(step, []))
        if len(values) >= 2:
            q = statistics.quantiles(values, n=100)
            print(
                f"{step:<18}{len(values):>7}{q[49]:>10.1f}{q[94]:>10.1f}{q[98]:>10.1f}"
                f"{values[-1]:>10.1f}"
            )

    print(
        f"\n{'process':<12}{'after seed':>12}{'start':>12}{'end':>12}{'growth':>9}"
        f"{'CPU ms/flow':>13}{'window min-max':>17}{'peak growth':>13}"
    )
    names = [*finished.rss_kb, "platform"]
    rows = {
        name: (
            seeded.rss_kb.get(name, seeded.total_rss_kb),
            window_start.rss_kb.get(name, window_start.total_rss_kb),
            finished.rss_kb.get(name, finished.total_rss_kb),
        )
        for name in names
    }
    cpu = {n: finished.cpu_s[n] - window_start.cpu_s[n] for n in finished.cpu_s}
    cpu["platform"] = sum(cpu.values())
    growth = {n: (end - start) / start if start else 0.0 for n, (_, start, end) in rows.items()}
    # The samples' lowest and highest over the window: memory that swings (nats-server's block
    # being written, docs/operations.md) is told from memory that only grows.
    seen = {n: [x.rss_kb.get(n, x.total_rss_kb) for x in window_samples] for n in rows}
    for name, (after_seed, start, end) in rows.items():
        print(
            f"{name:<12}{_mb(after_seed):>9.1f} MB{_mb(start):>9.1f} MB{_mb(end):>9.1f} MB"
            f"{growth[name]:>+9.1%}{cpu[name] * 1000 / max(flows, 1):>13.1f}"
            f"{_mb(min(seen[name])):>8.1f}-{_mb(max(seen[name])):.1f} MB"
            f"{_peak_growth(seen[name]):>+10.1%}"
        )
    print(
        f"platform PSS (shared pages counted once): {_mb(window_start.total_pss_kb):.0f} MB "
        f"at the start, {_mb(finished.total_pss_kb):.0f} MB at the end"
    )
    restarted = [n for n in finished.pids if window_start.pids[n] != finished.pids[n]]
    if restarted:
        print(f"RESTARTED during the window: {', '.join(restarted)}")
    server_errors = _server_errors(log[log_from:])
    print(
        f"the platform's log since the seed: {sum(server_errors.values())} 5xx answers or "
        "tracebacks (exchange's 502 for the demo's federated register left out: by design)"
    )
    for (part, status, route), count in sorted(server_errors.items()):
        print(f"  {count:>6} × {part} {status} {route}")
    worst = max(growth[n] for n in finished.rss_kb)

    verdicts = {
        "errors 0 (the flows' and the log's)": not results.errors and not server_errors,
        "no part restarted": not restarted,
        f"memory growth <= {GROWTH_TARGET:.0%} per process": worst <= GROWTH_TARGET,
        f"whole platform RSS <= {MEMORY_TARGET_MB:.0f} MB": _mb(
            max(window_start.total_rss_kb, finished.total_rss_kb)
        )
        <= MEMORY_TARGET_MB,
    }
    print()
    for what, held in verdicts.items():
        print(f"target {what}: {'met' if held else 'MISSED'}")
    return 0 if all(verdicts.values()) else 1


def _peak_growth(samples: list[int]) -> float:
    """The highest of the window's second half of ``samples`` over the first half's highest."""
    half = len(samples) // 2
    first, second = max(samples[:half] or samples), max(samples[half:])
    return (second - first) / first if first else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before measuring")
    parser.add_argument("--rate", type=float, default=0.5, help="flows started per second")
    parser.add_argument("--max-in-flight", type=int, default=16)
    parser.add_argument("--report-every", type=float, default=30.0)
    args = parser.parse_args()

    from tests.e2e.test_up import Up

    print(f"load average before: {_loadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pingtai-bench-soak-") as folder:
        up = Up(Path(folder))
        code = 1
        try:
            up.wait_for_line("ready in")
            print(seed_demo(up.gateway, Path(folder)), flush=True)
            code = asyncio.run(soak(up.gateway, Path(folder) / "var", args, up.lines))
        finally:
            up.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()

"""A steady stream of "open a business" applications (开办企业一件事) through the gateway.

Five demo enterprise agents apply, each with a fresh `Idempotency-Key` retried as a client
would (same key, same body) after a 5xx, a timeout or a refused connection; an application is
**accepted** when its submission answered 2xx. Each accepted application is then driven to its
final state as its people would: the applicant uploads what is asked (the premises proof, the
seal sample, and the population record, which the demo federates to a bureau with no system
connected), and each of the four departments' officer accepts and its department admin
approves, through their inboxes. Every step re-reads the application, so a step lost to a
fault is simply taken again.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from pingtai.demo.identity import ORGANISATIONS, PEOPLE, DemoPerson
from pingtai.demo.workflow import _org_ids, _value, sign_in
from pingtai.seed import ADMIN_CLIENT_ID, DEV_ADMIN_CLIENT_SECRET, admin_token

# Enterprise agents (demo phone suffixes) and the enterprise each applies for.
AGENTS = {31: "yunqi", 32: "xixi", 33: "haishu", 34: "oujiang", 35: "nanhu"}
# Each department of the bundle: its officer (accepts) and the one who approves (a dept admin).
DEPARTMENTS = {"market": (11, 12), "police": (13, 14), "tax": (17, 17), "hrss": (15, 15)}
PDF = b"%PDF-1.4\n% fault suite material\n%%EOF\n"
FINAL = frozenset({"completed", "rejected", "withdrawn"})
TOKEN_MAX_AGE_S = 100.0  # identity's access tokens live 300 s; a phase lasts at most 150 s
# Answers a client retries: the platform is (partly) away.
RETRY = frozenset({408, 425, 429, 500, 502, 503, 504})
_ID = re.compile(r"/[0-9a-f]{32}")


class FaultCounts(UserWarning):
    """Not a problem: what a fault did (accepted, completed, lost) and what the checks found.

    A warning because pytest prints warnings in its summary at the end of every run, serial or
    spread over xdist workers (a worker's own terminal summary is never shown)."""


def report(text: str) -> None:
    """Print ``text`` at the end of the run (pytest's warnings summary)."""
    warnings.warn(FaultCounts(text), stacklevel=2)


def person(suffix: int) -> DemoPerson:
    return next(p for p in PEOPLE if p.phone.endswith(f"{suffix:04d}"))


@dataclass
class People:
    """Tokens of the applicants and the officers, and each one's form and org."""

    gateway: str
    orgs: dict[str, str] = field(default_factory=dict)
    bundle: dict[str, Any] = field(default_factory=dict)
    tokens: dict[int, str] = field(default_factory=dict)
    signed_at: float = 0.0

    async def refresh(self) -> None:
        """Sign everyone in again once the tokens are older than half their life."""
        if self.tokens and time.monotonic() - self.signed_at < TOKEN_MAX_AGE_S:
            return
        async with httpx.AsyncClient(base_url=self.gateway, timeout=60.0) as client:
            if not self.orgs:
                client.headers["Authorization"] = "Bearer " + await admin_token(
                    client, client_id=ADMIN_CLIENT_ID, client_secret=DEV_ADMIN_CLIENT_SECRET
                )
                self.orgs = await _org_ids(client)
            if not self.bundle:
                self.bundle = await _bundle(client)
        wanted: dict[int, str] = {s: self.orgs[org] for s, org in AGENTS.items()}
        for key, (clerk, approver) in DEPARTMENTS.items():
            wanted[clerk] = wanted[approver] = self.orgs[key]
        signed = await asyncio.gather(
            *(sign_in(self.gateway, person(s), org) for s, org in wanted.items())
        )
        self.tokens = dict(zip(wanted, signed, strict=True))
        self.signed_at = time.monotonic()

    def headers(self, suffix: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[suffix]}"}

    def form(self, agent: int) -> dict[str, Any]:
        credit = next(o.credit_code for o in ORGANISATIONS if o.key == AGENTS[agent])
        schema = self.bundle["merged_form"]
        return {n: _value(n, s, person(agent), credit) for n, s in schema["properties"].items()}


async def _bundle(client: httpx.AsyncClient) -> dict[str, Any]:
    found = await client.get("/api/catalog/v1/bundles", params={"code": "zj-bundle-open-business"})
    [entry] = found.json()["items"]
    bundle: dict[str, Any] = (await client.get(f"/api/catalog/v1/bundles/{entry['id']}")).json()
    return bundle


@dataclass
class Counts:
    """What one phase of traffic did."""

    submissions: int = 0
    accepted: int = 0
    accepted_after_retry: int = 0
    not_accepted: int = 0
    fetch_pending_at_submit: int = 0  # accepted with materials exchange could not answer yet
    completed: int = 0
    other_final: Counter[str] = field(default_factory=Counter)
    unfinished: list[str] = field(default_factory=list)
    errors_seen: Counter[str] = field(default_factory=Counter)  # retried answers, by status
    errors_by_route: Counter[str] = field(default_factory=Counter)  # "503 POST /tasks/{id}"
    in_flight_max: int = 0

    @property
    def lost(self) -> int:
        return self.accepted - self.completed

    def routes(self) -> str:
        return ", ".join(f"{k} x{v}" for k, v in self.errors_by_route.most_common(6))

    def line(self, fault: str) -> str:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors_seen.items())) or "none"
        return (
            f"fault {fault}: accepted {self.accepted} (after a retry {self.accepted_after_retry}, "
            f"pending fetch {self.fetch_pending_at_submit}), completed {self.completed}, "
            f"lost {self.lost}; not accepted {self.not_accepted}; answers retried: {errors}"
        )


class Traffic:
    """Submit one application every ``interval_s`` and drive each to its final state."""

    def __init__(
        self,
        people: People,
        *,
        interval_s: float = 0.6,
        max_active: int = 8,
        deadline_s: float = 150.0,
    ) -> None:
        self.people = people
        self.interval_s = interval_s
        self.active = asyncio.Semaphore(max_active)
        self.deadline = time.monotonic() + deadline_s
        self.counts = Counts()
        self.accepted_ids: list[str] = []
        self.submitting_now = 0
        self._submitting = True
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self.http = httpx.AsyncClient(
            base_url=f"{people.gateway}/api/workflow/v1",
            timeout=httpx.Timeout(20.0, connect=5.0),
            limits=httpx.Limits(max_connections=32),
        )

    def start(self) -> None:
        self._loop = asyncio.create_task(self._submit_steadily())

    async def _submit_steadily(self) -> None:
        agents = list(AGENTS)
        n = 0
        while self._submitting and time.monotonic() < self.deadline:
            await self.active.acquire()
            if not self._submitting:
                self.active.release()
                break
            task = asyncio.create_task(self._one(agents[n % len(agents)]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            n += 1
            await asyncio.sleep(self.interval_s)

    async def stop_and_drain(self) -> Counts:
        """Stop submitting; wait (bounded) until every accepted application is final."""
        self._submitting = False
        if self._loop is not None:
            await self._loop
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(1.0, self.deadline - time.monotonic()))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.aclose()
        return self.counts

    async def probe(self) -> dict[str, Any]:
        """One application submitted once the platform is back, driven to its end; as it ends."""
        agent = next(iter(AGENTS))
        try:
            application = await self._submit(agent)
            assert application is not None, self.counts
            await self._drive(agent, application["id"])
            answer = await self._call("GET", f"/applications/{application['id']}",
                                      headers=self.people.headers(agent))  # fmt: skip
            assert answer is not None and answer.status_code == 200, answer
            final: dict[str, Any] = answer.json()
            return final
        finally:
            await self.http.aclose()

    async def _one(self, agent: int) -> None:
        try:
            application = await self._submit(agent)
            if application is not None:
                await self._drive(agent, application["id"])
        finally:
            self.active.release()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One request; None (and counted) when the platform did not answer usefully."""
        route = f"{method} {_ID.sub('/{id}', path)}"
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.counts.errors_seen[type(exc).__name__] += 1
            self.counts.errors_by_route[f"{type(exc).__name__} {route}"] += 1
            return None
        if response.status_code in RETRY:
            self.counts.errors_seen[str(response.status_code)] += 1
            self.counts.errors_by_route[f"{response.status_code} {route}"] += 1
            return None
        if response.status_code == 401:  # an expired token: sign in again
            await self.people.refresh()
        return response

    async def _submit(self, agent: int) -> dict[str, Any] | None:
        key = uuid.uuid4().hex
        body = {"bundle_id": self.people.bundle["id"], "form": self.people.form(agent)}
        self.counts.submissions += 1
        attempts = 0
        self.submitting_now += 1
        self.counts.in_flight_max = max(self.counts.in_flight_max, self.submitting_now)
        try:
            while time.monotonic() < self.deadline:
                attempts += 1
                headers = {**self.people.headers(agent), "Idempotency-Key": key}
                answer = await self._call("POST", "/applications", json=body, headers=headers)
                if answer is not None and answer.is_success:
                    application: dict[str, Any] = answer.json()
                    self.counts.accepted += 1
                    self.counts.accepted_after_retry += attempts > 1
                    self.counts.fetch_pending_at_submit += application["status"] == "submitted"
                    self.accepted_ids.append(application["id"])
                    return application
                if answer is not None and answer.status_code not in (401,):
                    break  # refused for good (4xx): not accepted
                await asyncio.sleep(min(0.25 * attempts, 2.0))
        finally:
            self.submitting_now -= 1
        self.counts.not_accepted += 1
        return None

    async def _drive(self, agent: int, application_id: str) -> None:
        path = f"/applications/{application_id}"
        status = "unknown"
        while time.monotonic() < self.deadline:
            answer = await self._call("GET", path, headers=self.people.headers(agent))
            if answer is None or answer.status_code != 200:
                await asyncio.sleep(0.5)
                continue
            application = answer.json()
            status = application["status"]
            if status in FINAL:
                if status == "completed":
                    self.counts.completed += 1
                else:
                    self.counts.other_final[status] += 1
                return
            asked = [m for m in application["materials"] if m["state"] == "requested"]
            if asked:
                await asyncio.gather(*(self._upload(agent, path, m["key"]) for m in asked))
            elif status == "in_progress":
                await asyncio.gather(
                    *(self._decide(application_id, clerk, approver)
                      for clerk, approver in DEPARTMENTS.values())
                )  # fmt: skip
            # submitted: workflow fetches what exchange could not answer yet; otherwise give
            # the steps just taken a moment before reading again
            await asyncio.sleep(0.5 if status == "submitted" else 0.1)
        self.counts.unfinished.append(f"{application_id} ({status})")

    async def _upload(self, agent: int, path: str, key: str) -> None:
        headers = {**self.people.headers(agent), "Content-Type": "application/pdf"}
        await self._call("POST", f"{path}/materials/{key}", content=PDF, headers=headers,
                         params={"filename": f"{key}.pdf"})  # fmt: skip

    async def _decide(self, application_id: str, clerk: int, approver: int) -> None:
        for who, decision in ((clerk, "accept"), (approver, "approve")):
            inbox = await self._call("GET", "/tasks", headers=self.people.headers(who),
                                     params={"application_id": application_id})  # fmt: skip
            if inbox is None or inbox.status_code != 200:
                return
            for task in inbox.json()["items"]:
                if decision in task["decisions"]:
                    await self._call(
                        "POST", f"/tasks/{task['id']}/actions", headers=self.people.headers(who),
                        json={"decision": decision, "comment": "同意"},
                    )  # fmt: skip

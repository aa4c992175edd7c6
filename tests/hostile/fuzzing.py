"""Schemathesis against every part's OpenAPI document, in process, bounded and repeatable.

Each operation is explored per caller (a platform admin, a plain citizen) and per generation
mode (positive: data the document allows; negative: data it forbids). Every example runs every
check and each distinct failure is kept (with a curl line to reproduce it) instead of stopping
at the first: one undocumented 404 must not hide a 500 behind it. Runs are derandomised
(Hypothesis seeds from the test, not the clock) and use no example database, so CI sees the same
requests every time. ``PINGTAI_HOSTILE_EXAMPLES`` raises the examples per run (default 5).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import hypothesis
import schemathesis
from anyio.abc import TaskStatus
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import Receive, Scope, Send

from tests.hostile.parts import PARTS, build_app
from tests.identity.conftest import Issuer

EXAMPLES = int(os.environ.get("PINGTAI_HOSTILE_EXAMPLES", "5"))
STATEFUL_SCENARIOS = int(os.environ.get("PINGTAI_HOSTILE_SCENARIOS", "6"))
STATEFUL_STEPS = 6

# The callers every operation is tried as (issue 12: a platform admin and a plain citizen).
CALLERS: dict[str, dict[str, Any]] = {
    "admin": {"roles": ["platform_admin"], "acr": "3"},
    "citizen": {"roles": ["citizen"], "acr": "2"},
}
MODES = {"positive": GenerationMode.POSITIVE, "negative": GenerationMode.NEGATIVE}

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Endpoints whose errors a standard defines otherwise: OAuth 2.0's token, revocation and
# introspection endpoints and OpenID's userinfo answer {"error": ...} as application/json
# (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 7662 §2.3, RFC 6750 §3), and the authorization
# endpoint's errors go back to the client or to a page (RFC 6749 §4.1.2.1), as do the
# end-session endpoint's (OpenID Connect RP-Initiated Logout §2: the person is told).
OAUTH_ERRORS = re.compile(r"^(GET|POST) /oauth2/(token|revoke|introspect|userinfo)$")
PAGE_ERRORS = re.compile(r"^(GET|POST) /oauth2/(authorize|logout)")

CheckFunction = Callable[..., bool | None]


def problem_document(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is an RFC 9457 problem: application/problem+json with type, title, status."""
    if response.status_code < 400:
        return None
    label = case.operation.label
    if response.status_code < 500 and PAGE_ERRORS.match(label):
        return None
    if response.status_code < 500 and OAUTH_ERRORS.match(label) and _oauth_error(response):
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.split(";")[0].strip() == PROBLEM_CONTENT_TYPE, (
        f"A {response.status_code} answered {content_type or 'no content type'!r}, "
        f"not {PROBLEM_CONTENT_TYPE}: {response.text[:300]!r}"
    )
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"The problem is not JSON: {response.text[:300]!r}") from None
    assert isinstance(body, dict), f"The problem is not an object: {body!r}"
    missing = [m for m in ("type", "title", "status") if m not in body]
    assert not missing, f"The problem lacks {missing}: {body!r}"
    assert body["status"] == response.status_code, (
        f"The problem says status {body['status']!r}, the response {response.status_code}"
    )
    return True


def _oauth_error(response: Any) -> bool:
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)


# "Safety": the hard target of issue 12 (0 server errors; every error a problem document).
SAFETY_CHECKS: tuple[CheckFunction, ...] = (not_a_server_error, problem_document)
# "Conformance": every answer is one the document declares, in the declared shape.
CONFORMANCE_CHECKS: tuple[CheckFunction, ...] = (
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
)
SAFETY = frozenset(check.__name__ for check in SAFETY_CHECKS) | {"exception"}


@dataclass(frozen=True)
class Finding:
    """One distinct failure: which check, what it saw, and how to send the request again."""

    check: str
    title: str
    status: int | None
    detail: str
    reproduce: str

    def render(self) -> str:
        return (
            f"[{self.check}] {self.title} (status {self.status})\n"
            f"    {self.detail.strip()[:600]}\n    reproduce: {self.reproduce}"
        )


def _check_name(failure: BaseException) -> str:
    checks: tuple[str, ...] = getattr(failure, "checks", ())
    if checks:
        return checks[0]
    return "problem_document"  # our only custom check; schemathesis wraps its AssertionError


def explore(
    operation: APIOperation[Any, Any, Any, Any],
    *,
    mode: GenerationMode,
    headers: dict[str, str],
    examples: int = EXAMPLES,
) -> list[Finding] | None:
    """Send ``examples`` generated requests to ``operation``; every distinct failure found
    (None: no request of this mode can be made for it)."""
    findings: dict[tuple[str, str, int | None], Finding] = {}
    checks = list(SAFETY_CHECKS + CONFORMANCE_CHECKS)

    def keep(check: str, title: str, status: int | None, detail: str, case: Any) -> None:
        key = (check, title, status)
        if key not in findings:
            curl = case.as_curl_command(headers={"Authorization": "Bearer <token>"})
            findings[key] = Finding(check, title, status, detail, curl)

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    # The token goes in as an explicit header: negative data leaves it alone, and schemathesis'
    # ignored_auth check knows it is a real one (and probes without it and with a bad one).
    @hypothesis.given(operation.as_strategy(generation_mode=mode, headers=dict(headers)))
    def run(case: Any) -> None:
        try:
            response = case.call()
        except Exception as exc:  # an app error escaping the ASGI stack
            keep("exception", type(exc).__name__, None, repr(exc), case)
            return
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                keep(_check_name(failure), failure.title, response.status_code,
                     failure.message, case)  # fmt: skip

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # Schemathesis could not make one request that breaks the document (e.g. a form body of
        # optional free strings): nothing was sent.
        return None
    return list(findings.values())


def operations(part: str) -> list[tuple[str, bool]]:
    """Each operation of ``part``'s document and whether it takes input that negative data can
    break (a parameter, or a body with a schema beyond "any object"); read without a database,
    at collection. Server-sent event streams are left out (see ``_streams``)."""
    with tempfile.TemporaryDirectory() as folder:
        app = PARTS[part].create(f"sqlite+aiosqlite:///{Path(folder) / 'unused.db'}")
        document = app.openapi()
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if _streams(operation):
                continue
            bodies = operation.get("requestBody", {}).get("content", {}).values()
            breakable = [b for b in bodies if b.get("schema", {}) != {"type": "object"}]
            found.append(
                (f"{method.upper()} {path}", bool(operation.get("parameters") or breakable))
            )
    return found


def _streams(operation: dict[str, Any]) -> bool:
    """Whether the operation answers a server-sent event stream: it stays open waiting for
    events, so a fuzzer's request would wait for its keep-alive each time (left out; workflow's
    own tests cover the streams)."""
    success = operation["responses"].get("200", {})
    return "text/event-stream" in success.get("content", {})


class Started:
    """An app kept started for the whole session in schemathesis' event loop.

    Schemathesis' pytest plugin ends the lifespan of every ASGI app after each test (and a part's
    shutdown closes its database and token verifier), so the app's own lifespan is held here, in
    one task of that loop, and schemathesis sees an app whose lifespan does nothing.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        # Schemathesis' one event-loop thread (private, pinned version): the requests run there.
        self.portal = asgi._get_portal()
        self.task, self.stop = self.portal.start_task(self._hold)

    async def _hold(self, *, task_status: TaskStatus[anyio.Event]) -> None:
        stop = anyio.Event()
        async with self.app.router.lifespan_context(self.app):
            task_status.started(stop)
            await stop.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        self.portal.call(self.stop.set)
        self.task.result()


class Targets:
    """Each part's app started once (lazily) in schemathesis' event loop, and its schema."""

    def __init__(self, issuer: Issuer, database_urls: Callable[[str], str]) -> None:
        self.issuer = issuer
        self.database_urls = database_urls
        self.started: list[Started] = []
        self.schemas: dict[tuple[str, str], BaseSchema] = {}
        self.results: dict[tuple[str, ...], list[Finding] | None] = {}

    def schema(self, backend: str, part: str) -> BaseSchema:
        key = (backend, part)
        if key not in self.schemas:
            app = build_app(part, self.database_urls(backend), self.issuer)
            started = Started(app)
            self.started.append(started)
            if part == "gateway":
                # The gateway's /openapi.json is the merged document of every part; its own
                # API's document is the one FastAPI makes of its routes.
                schema = schemathesis.openapi.from_dict(app.openapi())
                schema.app = started
            else:
                schema = schemathesis.openapi.from_asgi("/openapi.json", started)
            self.schemas[key] = schema
        return self.schemas[key]

    def findings(
        self, backend: str, part: str, label: str, caller: str, mode: str
    ) -> list[Finding] | None:
        """The findings of one run, made on first demand and kept for the other test."""
        key = (backend, part, label, caller, mode)
        if key not in self.results:
            operation = self.schema(backend, part).find_operation_by_label(label)
            assert operation is not None, f"{label} is not in {part}'s document"
            headers = self.issuer.headers(**CALLERS[caller])
            self.results[key] = explore(operation, mode=MODES[mode], headers=headers)
        return self.results[key]

    def close(self) -> None:
        """Stop every started app."""
        for started in self.started:
            started.close()


def report(findings: list[Finding]) -> str:
    return "\n".join(finding.render() for finding in findings)

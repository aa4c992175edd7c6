"""Schemathesis through the gateway: its merged /openapi.json, every request forwarded to the
real parts over HTTP (tests/hostile/through_gateway.py), and stateful runs along links.

Per part of the merged document, as a platform admin and as a citizen, with data the document
allows and (as the admin) data it forbids: no 5xx, every error a problem document (safety), and
every answer as the merged document declares it (conformance). Then schemathesis' state machine
follows the links added at the test level — create, then read back, update and act on what was
made — with the same checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase
from schemathesis.core.failures import FailureGroup

from tests.conftest import BACKENDS
from tests.hostile.fuzzing import (
    CALLERS,
    CONFORMANCE_CHECKS,
    MODES,
    SAFETY,
    SAFETY_CHECKS,
    STATEFUL_SCENARIOS,
    STATEFUL_STEPS,
    Finding,
    Targets,
    _check_name,
    _streams,
    explore,
    report,
)
from tests.hostile.parts import SERVICES
from tests.hostile.through_gateway import Platform, each_operation, linked_schemas, owner
from tests.identity.conftest import Issuer

SECTIONS = (*SERVICES, "gateway")
# The stateful caller: a platform admin who is also a department's admin and officer, so both the
# gateway's developer API and a department's own resources take its creates.
STATEFUL_ORG = "5d0c6f0f3a4b4c2e9e1f7a8b9c0d1e2f"
STATEFUL_CALLER: dict[str, Any] = {
    "roles": ["platform_admin", "dept_admin", "officer"], "org": STATEFUL_ORG, "acr": "3",
}  # fmt: skip
# Links the state machines must be seen to follow: created, then read back.
FOLLOWED_AT_LEAST = (
    "GET /v1/plans/{plan_id}",
    "GET /v1/applications/{application_id}",
    "GET /api/workflow/v1/webhooks/{webhook_id}",
)
# The per-operation runs go through the gateway on SQLite only: what they add to the direct
# runs of test_openapi_fuzz.py (which fuzz every operation on SQLite and on PostgreSQL) is the
# gateway's forwarding and its merged document, the same code whatever the parts' database. The
# stateful runs, which create and then act on what they made, run on both backends.
RUNS = [
    pytest.param(backend, part, caller, mode, id=f"{backend}-{part}-{caller}-{mode}")
    for backend in ["sqlite"]
    for part in SECTIONS
    for caller in CALLERS
    for mode in MODES
    # As in test_openapi_fuzz: negative data as the admin, whom no role check stops first.
    if mode == "positive" or caller == "admin"
]


@pytest.fixture(scope="module")
def platforms(targets: Targets, issuer: Issuer) -> Iterator[Callable[[str], Platform]]:
    """The platform behind its gateway per database backend, started on first use (its
    databases are the fuzzing session's: dropped with it)."""
    started: dict[str, Platform] = {}

    def platform(backend: str) -> Platform:
        if backend not in started:
            started[backend] = Platform(issuer, lambda: targets.database_urls(backend))
        return started[backend]

    yield platform
    for each in started.values():
        each.close()


def _takes_input(operation: dict[str, Any]) -> bool:
    """A parameter, or a body with a schema beyond "any object" (as fuzzing.operations)."""
    bodies = operation.get("requestBody", {}).get("content", {}).values()
    return bool(operation.get("parameters")) or any(
        b.get("schema", {}) != {"type": "object"} for b in bodies
    )


def _findings(
    platform: Platform, issuer: Issuer, part: str, caller: str, mode: str
) -> list[Finding]:
    """Every distinct failure of one part's operations through the gateway (made once)."""
    key = (part, caller, mode)
    if key not in platform.results:
        headers = issuer.headers(**CALLERS[caller])
        found: list[Finding] = []
        explored = 0
        for method, path, operation in each_operation(platform.document):
            if owner(operation) != part or _streams(operation):
                continue
            if mode == "negative" and not _takes_input(operation):
                continue
            api_operation = platform.schema.find_operation_by_label(f"{method.upper()} {path}")
            assert api_operation is not None, f"{method.upper()} {path}"
            findings = explore(api_operation, mode=MODES[mode], headers=headers)
            explored += findings is not None
            found += findings or []
        assert explored, f"no operation of {part} was explored through the gateway"
        platform.results[key] = found
    result: list[Finding] = platform.results[key]
    return result


@pytest.mark.parametrize(("backend", "part", "caller", "mode"), RUNS)
def test_through_the_gateway_no_server_error_and_every_error_a_problem(
    platforms: Callable[[str], Platform], issuer: Issuer, backend: str, part: str, caller: str,
    mode: str,
) -> None:  # fmt: skip
    findings = _findings(platforms(backend), issuer, part, caller, mode)
    unsafe = [f for f in findings if f.check in SAFETY]
    assert not unsafe, report(unsafe)


@pytest.mark.parametrize(("backend", "part", "caller", "mode"), RUNS)
def test_through_the_gateway_answers_as_the_merged_document_says(
    platforms: Callable[[str], Platform], issuer: Issuer, backend: str, part: str, caller: str,
    mode: str,
) -> None:  # fmt: skip
    findings = _findings(platforms(backend), issuer, part, caller, mode)
    wrong = [f for f in findings if f.check not in SAFETY]
    assert not wrong, report(wrong)


# --- stateful: along the links ------------------------------------------------------------------


def _stateful(platform: Platform, issuer: Issuer) -> tuple[list[Finding], Counter[str]]:
    """One state machine per create (bounded by fuzzing's STATEFUL_* budget): its findings and,
    per linked operation, the steps along a link that succeeded."""
    if ("stateful",) in platform.results:
        result: tuple[list[Finding], Counter[str]] = platform.results[("stateful",)]
        return result
    headers = issuer.headers(**STATEFUL_CALLER)
    findings: dict[tuple[str, str, int | None], Finding] = {}
    followed: Counter[str] = Counter()
    checks = list(SAFETY_CHECKS + CONFORMANCE_CHECKS)
    schemas = linked_schemas(platform, org=STATEFUL_ORG)
    assert schemas, "no create in the merged document has an id to link from"
    for schema in schemas.values():

        class Machine(schema.as_state_machine()):  # type: ignore[misc]
            def before_call(self, case: Any) -> None:
                # Generated credentials (a random bearer or X-API-Key) make way for the caller's
                # token: the machine is here to act on what it made; bad credentials are the
                # per-operation runs' and ignored_auth's business.
                kept = {
                    k: v for k, v in (case.headers or {}).items()
                    if k.lower() not in ("authorization", "x-api-key")
                }  # fmt: skip
                case.headers = {**kept, **headers}

            def step(self, input: Any) -> Any:
                output = super().step(input)
                if input.transition is not None and input.is_applied:
                    if output.response.status_code < 300:
                        followed[input.case.operation.label] += 1
                return output

            def validate_response(
                self, response: Any, case: Any, *args: Any, **kwargs: Any
            ) -> None:
                try:
                    case.validate_response(response, checks=checks, headers=headers)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        key = (_check_name(failure), failure.title, response.status_code)
                        if key not in findings:
                            curl = case.as_curl_command(headers={"Authorization": "Bearer <token>"})
                            findings[key] = Finding(*key, failure.message, curl)

        Machine.run(
            settings=hypothesis.settings(
                max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS,
                derandomize=True, database=None, deadline=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck), print_blob=False,
            )
        )  # fmt: skip
    platform.results[("stateful",)] = (list(findings.values()), followed)
    return platform.results[("stateful",)]  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend", BACKENDS)
def test_stateful_links_are_followed_through_the_gateway(
    platforms: Callable[[str], Platform], issuer: Issuer, backend: str
) -> None:
    """The state machines make things and then read, update and act on them along the links:
    the gateway's plans and applications and workflow's webhooks, at least (what generated
    data can create; see docs/testing.md)."""
    _, followed = _stateful(platforms(backend), issuer)
    for label in FOLLOWED_AT_LEAST:
        assert followed[label], f"no step along a link to {label} succeeded: {dict(followed)}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_stateful_no_server_error_and_every_error_a_problem(
    platforms: Callable[[str], Platform], issuer: Issuer, backend: str
) -> None:
    findings, _ = _stateful(platforms(backend), issuer)
    unsafe = [f for f in findings if f.check in SAFETY]
    assert not unsafe, report(unsafe)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stateful_answers_as_the_merged_document_says(
    platforms: Callable[[str], Platform], issuer: Issuer, backend: str
) -> None:
    findings, _ = _stateful(platforms(backend), issuer)
    wrong = [f for f in findings if f.check not in SAFETY]
    assert not wrong, report(wrong)

"""Who calls in the authorisation matrix: one column per role and ownership case.

Every resource a row aims at belongs to **department A** (its data, its tasks, its datasets) or
to **the citizen** / **enterprise E** (their applications, reviews, consents). A column is a role
seen from that resource:

- ``:own``: the citizen or the enterprise's agent the resource belongs to;
- ``:same-dept``: a person (or a system) of department A, the department that owns or handles it;
- ``:other``/``:other-dept``: the same role for someone else (another citizen, enterprise F,
  department B);
- the platform-wide roles (``platform_admin``, ``auditor``, ``evaluator``), which have no
  organisation;
- ``anonymous``: no token at all.

``service`` is a department's system signing in with client credentials: an ``org``, no
assurance level (``acr`` absent), and no role this version knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.identity.conftest import Issuer

ANONYMOUS = "anonymous"
CALLERS: tuple[str, ...] = (
    ANONYMOUS,
    "citizen:own",
    "citizen:other",
    "agent:own",
    "agent:other",
    "officer:same-dept",
    "officer:other-dept",
    "dept_admin:same-dept",
    "dept_admin:other-dept",
    "platform_admin",
    "auditor",
    "evaluator",
    "service:same-dept",
    "service:other-dept",
)
SIGNED_IN = frozenset(CALLERS) - {ANONYMOUS}

# Department A and B, enterprise E and F, as the evaluation scenario names them (its events
# carry these ids), and the two citizens.
DEPT_A, DEPT_B, ENT_E, ENT_F = "d1" * 16, "d2" * 16, "e1" * 16, "e2" * 16
CITIZEN, OTHER_CITIZEN = "citizen-1", "citizen-2"


@dataclass
class Ids:
    """The organisations and people of one part's world (identity's are its own generated ids)."""

    dept_a: str = DEPT_A
    dept_b: str = DEPT_B
    ent_e: str = ENT_E
    ent_f: str = ENT_F
    subs: dict[str, str] = field(default_factory=dict)

    def sub(self, caller: str) -> str:
        """The ``sub`` a caller's token carries."""
        default = {"citizen:own": CITIZEN, "citizen:other": OTHER_CITIZEN}
        return self.subs.get(caller) or default.get(caller) or f"authz-{caller.replace(':', '-')}"

    def org(self, caller: str) -> str | None:
        """The organisation a caller acts for."""
        role, _, case = caller.partition(":")
        if role == "agent":
            return self.ent_e if case == "own" else self.ent_f
        if role in {"officer", "dept_admin", "service"}:
            return self.dept_a if case == "same-dept" else self.dept_b
        return None


ROLES = {
    "citizen": ["citizen"],
    "agent": ["citizen", "enterprise_agent"],
    "officer": ["officer"],
    "dept_admin": ["dept_admin"],
    "platform_admin": ["platform_admin"],
    "auditor": ["auditor"],
    "evaluator": ["evaluator"],
    # A client-credentials token names no role this version knows: it grants nothing.
    "service": ["system"],
}


def headers(issuer: Issuer, ids: Ids, caller: str) -> dict[str, str]:
    """The ``Authorization`` header of ``caller`` (none for the anonymous caller)."""
    if caller == ANONYMOUS:
        return {}
    role = caller.partition(":")[0]
    return issuer.headers(
        sub=ids.sub(caller),
        roles=ROLES[role],
        org=ids.org(caller),
        acr="" if role == "service" else "2",
    )

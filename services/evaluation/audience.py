"""Who is asking, as evaluation's rules see it: platform, evaluator, department or applicant.

- ``platform_admin``: everything.
- ``evaluator`` (and ``auditor``): every indicator, ranking and index; reviews and cases only
  anonymised (no applicant, no application id, no free text).
- ``officer`` / ``dept_admin``: their own department's indicators, reviews and cases (with
  comments and application ids, never the applicant's id), and the rankings.
- ``citizen`` / ``enterprise_agent``: their own (or their enterprise's) reviews and cases.
"""

from __future__ import annotations

from libs.common.auth import Principal, Role
from libs.common.errors import Forbidden


def is_platform(principal: Principal) -> bool:
    """A platform admin: sees everything."""
    return principal.has_role(Role.PLATFORM_ADMIN)


def is_evaluator(principal: Principal) -> bool:
    """A third-party evaluator or an auditor: reads everything, anonymised."""
    return principal.has_role(Role.EVALUATOR) or principal.has_role(Role.AUDITOR)


def department_of(principal: Principal) -> str | None:
    """The department an officer or department admin acts for."""
    if principal.org and (principal.has_role(Role.OFFICER) or principal.has_role(Role.DEPT_ADMIN)):
        return principal.org
    return None


def is_applicant(principal: Principal) -> bool:
    """A citizen or an enterprise's agent."""
    return principal.has_role(Role.CITIZEN) or principal.has_role(Role.ENTERPRISE_AGENT)


def enterprise_of(principal: Principal) -> str | None:
    """The enterprise an agent acts for."""
    return principal.org if principal.has_role(Role.ENTERPRISE_AGENT) else None


def owns(principal: Principal, *, applicant_id: str | None, applicant_org_id: str | None) -> bool:
    """Whether the caller is the applicant (or an agent of the applying enterprise)."""
    if not is_applicant(principal):
        return False
    if applicant_id is not None and principal.sub == applicant_id:
        return True
    enterprise = enterprise_of(principal)
    return enterprise is not None and enterprise == applicant_org_id


def require_reader(principal: Principal) -> None:
    """Indicators and rankings: platform, evaluators and departments; not applicants."""
    if not (is_platform(principal) or is_evaluator(principal) or department_of(principal)):
        raise Forbidden("Indicators are for platform admins, evaluators and departments.")
